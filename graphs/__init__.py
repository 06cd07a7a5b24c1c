"""Compiled graphs for the LangGraph API server (``langgraph dev``) and Studio.

``langgraph.json`` at the repository root names them:

* ``sale``: the SALE auction itself (:mod:`graphs.sale`);
* ``research_assistant``: an example app that uses the auction as a subgraph
  (:mod:`graphs.research_assistant`);
* ``routed_agents``: an example app whose ``sale_router`` node sends each run to the
  winning agent's node (:mod:`graphs.routed_agents`).

They are compiled without a checkpointer or store: the server provides its own
persistence. Apps that embed the auction use ``sale_graph.build_sale_graph()``
(uncompiled) or :mod:`sale_graph.compose` instead.
"""
