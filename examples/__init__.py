"""Example apps: the three ways to use SALE in LangGraph, and the graphs ``langgraph dev`` serves.

Scripts (``python examples/<name>.py [POOL.toml]``, each with a ``main(pool_path)``):

* :mod:`examples.subgraph_app`: way 1, the auction as a subgraph sharing state keys;
* :mod:`examples.middleware_agent`: way 2, ``SaleMiddleware`` on a ``create_agent`` agent;
* :mod:`examples.router_app`: way 3, ``sale_router`` between two agent nodes.

``langgraph.json`` at the repository root serves three graphs from here, each a
module-level ``graph`` compiled without a checkpointer or store (the server brings its
own persistence):

* ``sale``: the auction itself (:mod:`examples.auction_graph`);
* ``research_assistant``: an app whose answering step is the auction, wrapped in a node
  with the app's own schema (way 1, :mod:`examples.research_assistant`);
* ``routed_agents``: the router app of :mod:`examples.router_app`.
"""
