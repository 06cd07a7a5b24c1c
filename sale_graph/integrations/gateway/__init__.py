"""The SALE gateway: an OpenAI-compatible endpoint that puts the auction in front of any client.

A client changes its base URL and asks for the model ``sale``; the gateway runs a
route-only auction on the conversation's turn and forwards the request to the winner's
endpoint with the winning strategy, returning the winner's answer in OpenAI's format.
See docs/gateway.md for the contract.

Modules, one concept each:

- :mod:`~.app`: :func:`create_gateway_app`, the routes;
- :mod:`~.chat`: ``POST /v1/chat/completions``: who answers, and the forwarding;
- :mod:`~.request`: reading and checking a request;
- :mod:`~.auction`: the route-only auction on a turn, and the outcomes;
- :mod:`~.upstream`: forwarding to an agent's endpoint (limits, retries, streams);
- :mod:`~.sessions`: pins behind a small async interface, and the in-process store;
- :mod:`~.errors`: OpenAI-shaped errors; :mod:`~.keys`: client keys and redaction;
  :mod:`~.metrics`: Prometheus metrics; :mod:`~.core`: the parts one app shares;
- :mod:`~.asgi`: the app from the environment (``uvicorn`` workers, ``langgraph.json``'s ``http.app``).

Needs the ``gateway`` extra (Starlette, uvicorn, sse-starlette, prometheus-client).
"""

from __future__ import annotations

try:
    import prometheus_client  # noqa: F401  # the extra's packages, checked once with one clear message
    import sse_starlette  # noqa: F401
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(f"the SALE gateway needs the 'gateway' extra ({exc.name} is missing): "
                      "pip install 'sale-graph[gateway]'") from exc

from sale_graph.integrations.gateway.app import create_gateway_app
from sale_graph.integrations.gateway.core import DEFAULT_SESSION_IDLE_S
from sale_graph.integrations.gateway.errors import GatewayError
from sale_graph.integrations.gateway.request import PER_REQUEST_OPTIONS, SALE_MODEL, SESSION_HEADER
from sale_graph.integrations.gateway.sessions import InProcessSessions, Pin, SessionStore

__all__ = [
    "DEFAULT_SESSION_IDLE_S",
    "PER_REQUEST_OPTIONS",
    "SALE_MODEL",
    "SESSION_HEADER",
    "GatewayError",
    "InProcessSessions",
    "Pin",
    "SessionStore",
    "create_gateway_app",
]
