"""The gateway's ASGI app: :func:`create_gateway_app` and its routes.

| route | what |
|---|---|
| ``GET /v1/models`` | ``sale`` (the auction) and every pool agent by name |
| ``POST /v1/chat/completions`` | the auction, then the winner's answer (:mod:`.chat`) |
| ``POST /v1/sale/outcome`` | ``{"auction_id" or "session", "outcome": "passed"/"failed"}`` into the auction memory |
| ``GET /metrics`` (also ``/v1/sale/metrics``) | Prometheus metrics (:mod:`.metrics`) |
| ``GET /health`` | ``{"status": "ok", ...}``, with the worker's process id, the workers and each agent's concurrency share |

The app adds no middleware and no app-wide exception handler: every route answers its
own errors in OpenAI's shape, so the app can be mounted as ``langgraph.json``'s
``http.app`` beside the LangGraph API server's own routes without changing theirs
(that server keeps its own ``/metrics``; the gateway's is then at ``/v1/sale/metrics``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sale_graph.context import SaleContext
from sale_graph.errors import SaleError
from sale_graph.integrations._route_settings import KEEP, PoolSpec
from sale_graph.integrations.gateway.chat import chat_completions
from sale_graph.integrations.gateway.core import DEFAULT_SESSION_IDLE_S, Gateway, build_gateway
from sale_graph.integrations.gateway.errors import GatewayError, bad_request, from_sale_error
from sale_graph.integrations.gateway.keys import ClientKeys
from sale_graph.integrations.gateway.request import DEFAULT_MAX_BODY_BYTES, json_object, read_body
from sale_graph.integrations.gateway.sessions import SessionStore
from sale_graph.llm import ModelFactory
from sale_graph.memory import AuctionMemory
from sale_graph.weights import Weights

OUTCOME_BODY_BYTES = 64 * 1024
REPORTED_OUTCOMES = ("passed", "failed")
OWNER = "sale-graph"


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.sale_gateway
    return gateway


async def list_models(request: Request) -> Response:
    """``GET /v1/models``: OpenAI's list object with ``sale`` and every pool agent."""
    gw = _gateway(request)
    try:
        gw.keys.check(request.headers)
    except GatewayError as error:
        gw.metrics.error(error.status, error.code)
        return error.response()
    created = int(time.time())
    data = [{"id": name, "object": "model", "created": created, "owned_by": OWNER} for name in gw.models]
    return JSONResponse({"object": "list", "data": data})


async def _outcome(gw: Gateway, request: Request) -> dict[str, Any]:
    gw.keys.check(request.headers)
    body = json_object(await read_body(request, OUTCOME_BODY_BYTES))
    outcome = body.get("outcome")
    if outcome not in REPORTED_OUTCOMES:
        raise bad_request(f"'outcome' must be one of {', '.join(REPORTED_OUTCOMES)}, got {json.dumps(outcome)}", "outcome")
    auction_id, session = body.get("auction_id"), body.get("session")
    if auction_id is None and session is None:
        raise bad_request("give the 'auction_id' (the x-sale-auction-id header of the answer) or the 'session'", "auction_id")
    if auction_id is not None and not (isinstance(auction_id, str) and auction_id):
        raise bad_request("'auction_id' must be a non-empty string", "auction_id")
    if auction_id is None:
        if not (isinstance(session, str) and session):
            raise bad_request("'session' must be a non-empty string", "session")
        pin = await gw.sessions.get(f"session:{gw.keys.check(request.headers)}:{session}")
        if pin is None:
            raise GatewayError(404, f"no session {session!r} pinned here (unknown, or expired after its idle time)",
                               code="session_not_found", param="session")
        auction_id = pin.auction_id
    try:
        detail = await gw.auctions.report(auction_id, outcome)
    except SaleError as exc:
        raise from_sale_error(exc) from exc
    return {"auction_id": auction_id, "outcome": outcome, "stored": True, "detail": detail}


async def report_outcome(request: Request) -> Response:
    """``POST /v1/sale/outcome``: the outcome of an auction (by id, or a session's) goes to the auction memory."""
    gw = _gateway(request)
    try:
        return JSONResponse(await _outcome(gw, request))
    except GatewayError as error:
        gw.metrics.error(error.status, error.code)
        return error.response()


async def metrics(request: Request) -> Response:
    """``GET /metrics``: the Prometheus text format (behind the client keys when the gateway has some)."""
    gw = _gateway(request)
    try:
        gw.keys.check(request.headers)
    except GatewayError as error:
        return error.response()
    gw.metrics.sessions.set(await gw.sessions.count())
    return Response(gw.metrics.render(), media_type=gw.metrics.content_type)


async def health(request: Request) -> Response:
    """``GET /health``: the gateway is up (it does not call the pool's endpoints; ``sale pool check`` does)."""
    gw = _gateway(request)
    return JSONResponse({"status": "ok", "pool": gw.pool.source, "agents": gw.pool.names, "memory": gw.context.use_memory,
                         "pid": os.getpid(), "workers": gw.workers, "max_concurrency": gw.limits()})


async def not_found(request: Request) -> Response:
    """Any other ``/v1/...`` path: an OpenAI-shaped 404."""
    error = GatewayError(404, f"no route {request.method} {request.url.path} on the SALE gateway", code="not_found")
    _gateway(request).metrics.error(error.status, error.code)
    return error.response()


def create_gateway_app(
    pool: PoolSpec = KEEP,
    *,
    weights: Weights | str | None = KEEP,
    context: SaleContext | Mapping[str, Any] | None = None,
    api_keys: list[str] | None = None,
    api_keys_env: str | None = None,
    session_idle_s: float = DEFAULT_SESSION_IDLE_S,
    sessions: SessionStore | str | None = None,
    memory: AuctionMemory | None = None,
    model_factory: ModelFactory | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    workers: int | None = None,
    **settings: Any,
) -> Starlette:
    """The SALE gateway as an ASGI app: an OpenAI-compatible endpoint whose model ``sale`` runs an auction.

    Serve it with any ASGI server (``uvicorn.run(create_gateway_app(pool="pool.toml"))``),
    or from ``sale gateway``, or beside the graphs of ``langgraph dev`` (``langgraph.json``'s
    ``http.app``: ``sale_graph.integrations.gateway.asgi:app``). See docs/gateway.md.

    Args:
        pool: an :class:`~sale_graph.pool.AgentPool`, a pool TOML, or ``None`` for the embedded
            pool; left out, the ``context``'s pool (else the embedded pool).
        weights: a :class:`~sale_graph.weights.Weights` or a weights file; left out, the ``context``'s
            (else the documented defaults).
        context: the auction settings (a :class:`SaleContext` or a dict of its fields); ``route_only``
            is forced on, and the endpoints are not pinged before each auction unless
            ``check_endpoints=True`` is given as a keyword.
        api_keys: the client keys accepted (``Authorization: Bearer <key>``); none: an open gateway.
        api_keys_env: the environment variable holding accepted client keys (commas between them).
        session_idle_s: seconds a pin lives after its last use.
        sessions: where pins live: a store, or its URL (``sqlite:///sessions.db`` for the workers of one
            machine, ``postgresql://...`` for several machines; see :func:`~.sessions.open_sessions`);
            default: :class:`~.sessions.InProcessSessions` in this process.
        memory: the auction memory (default: the one the settings name, when ``use_memory``).
        model_factory: builds each agent's chat model for the auction (default: from the pool).
        max_body_bytes: the largest request body accepted (a larger one gets a 413).
        workers: how many gateway processes, on every machine, serve this pool (``sale gateway`` tells its
            workers); each holds ``max_concurrency // workers`` slots at each endpoint, for this whole
            process. Default: ``$SALE_GATEWAY_WORKERS``, else 1 (all of each bound).
        **settings: more :class:`SaleContext` fields (``use_memory``, ``jury_mode``, ``on_execution_error``...).

    Raises:
        ContextError: a setting is not a :class:`SaleContext` field.
        PoolError: the pool is missing or malformed, or an agent's ``max_concurrency`` is below ``workers``.
        WeightsError: the weights do not fit the pool.
        SaleError: ``api_keys_env`` names a variable that holds no key, or ``sessions`` is a URL that
            names no session store (:class:`~.sessions.SessionsError`).
    """
    if weights is not KEEP:
        settings["weights"] = weights
    keys = ClientKeys([*(api_keys or []), *ClientKeys.from_env(api_keys_env).secrets()],
                      source=f"${api_keys_env}" if api_keys_env else "api_keys")
    gateway = build_gateway(pool, context=context, api_keys=keys, session_idle_s=session_idle_s, sessions=sessions,
                            memory=memory, model_factory=model_factory, max_body_bytes=max_body_bytes, settings=settings,
                            workers=workers)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await gateway.aclose()

    routes = [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/sale/outcome", report_outcome, methods=["POST"]),
        Route("/v1/sale/metrics", metrics, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/v1/{path:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sale_gateway = gateway
    return app


__all__ = ["create_gateway_app"]
