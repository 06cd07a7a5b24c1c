"""The gateway's parts, built once per app: settings, pool, auction step, sessions, upstream client, metrics, keys.

:func:`build_gateway` checks everything it is given before anything is served (the
pool file, the weights against the pool, the client keys' variable, each endpoint's
share of its ``max_concurrency`` among the workers), so a bad setting stops
``sale gateway`` at start with one line naming it.

**Workers share the endpoints' bounds.** A gateway told it is one of ``workers``
processes (``sale gateway --workers N`` tells its workers; ``--total-workers T`` or
``$SALE_GATEWAY_WORKERS`` counts the workers of every machine) holds, at each endpoint,
``floor(max_concurrency / workers)`` slots (:func:`sale_graph.llm.limits.worker_limit`),
so all of them together never pass the endpoint's ``max_concurrency``. An agent whose
bound is below ``workers`` stops the gateway at start, naming it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sale_graph.context import SaleContext
from sale_graph.errors import PoolError
from sale_graph.integrations._route_settings import EXECUTION_KEYS, PoolSpec, refuse_settings, route_context
from sale_graph.integrations.gateway.auction import AuctionStep
from sale_graph.integrations.gateway.errors import GatewayError
from sale_graph.integrations.gateway.keys import ClientKeys, Redactor
from sale_graph.integrations.gateway.metrics import GatewayMetrics
from sale_graph.integrations.gateway.request import DEFAULT_MAX_BODY_BYTES, SALE_MODEL
from sale_graph.integrations.gateway.sessions import Pin, SessionStore, open_sessions
from sale_graph.integrations.gateway.upstream import Upstream
from sale_graph.llm import ModelFactory, share_endpoints
from sale_graph.memory import AuctionMemory
from sale_graph.pool import AgentPool

DEFAULT_SESSION_IDLE_S = 1800.0
"""A pin unused for this long (30 minutes) expires."""
WORKERS_ENV = "SALE_GATEWAY_WORKERS"
"""How many gateway processes (on every machine) share the pool's endpoints, when the app is not told."""


def workers_from_env() -> int:
    """``$SALE_GATEWAY_WORKERS`` (1 when unset).

    Raises:
        PoolError: it is set to something other than a positive integer.
    """
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if not raw:
        return 1
    try:
        workers = int(raw)
    except ValueError:
        workers = 0
    if workers < 1:
        raise PoolError(f"${WORKERS_ENV} must be a positive integer (the gateway workers sharing the pool's endpoints), "
                        f"got {raw!r}")
    return workers


@dataclass
class Gateway:
    """What every request of one gateway app shares.

    Attributes:
        context: the auction settings (``route_only`` on).
        pool: the agents.
        auctions: the auction step.
        sessions: the pins.
        upstream: the HTTP client to the agents' endpoints.
        metrics: the Prometheus metrics.
        keys: the accepted client keys.
        redact: removes keys from what is answered and logged.
        max_body_bytes: the largest request body accepted.
        inflight: the auctions running now for a session, so that its concurrent first requests share one
            (each ends with its pin, its failure, or ``None`` when it failed on its own request).
        workers: the gateway processes (on every machine) that share the pool's endpoints.
        slots: agent name -> this worker's slots at its endpoint (``max_concurrency // workers``; 0: no bound).
    """

    context: SaleContext
    pool: AgentPool
    auctions: AuctionStep
    sessions: SessionStore
    upstream: Upstream
    metrics: GatewayMetrics
    keys: ClientKeys
    redact: Redactor
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    inflight: dict[str, asyncio.Future[Pin | GatewayError | None]] = field(default_factory=dict)
    workers: int = 1
    slots: dict[str, int] = field(default_factory=dict)

    def limits(self) -> dict[str, dict[str, int]]:
        """Each agent's concurrency bound and this worker's share of it (``/health`` shows them)."""
        return {a.name: {"max_concurrency": a.max_concurrency, "per_worker": self.slots.get(a.name, a.max_concurrency)}
                for a in self.pool.agents}

    @property
    def models(self) -> list[str]:
        """The model names served: ``sale`` and every agent of the pool."""
        return [SALE_MODEL, *self.pool.names]

    async def aclose(self) -> None:
        """Close the upstream connections and the session store."""
        await self.upstream.aclose()
        await self.sessions.close()


def build_gateway(
    pool: PoolSpec | Any,
    *,
    context: SaleContext | Mapping[str, Any] | None = None,
    api_keys: ClientKeys | None = None,
    session_idle_s: float = DEFAULT_SESSION_IDLE_S,
    sessions: SessionStore | str | None = None,
    memory: AuctionMemory | None = None,
    model_factory: ModelFactory | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    settings: Mapping[str, Any] | None = None,
    workers: int | None = None,
) -> Gateway:
    """Check the settings and build the gateway's parts (see :func:`~sale_graph.integrations.gateway.create_gateway_app`).

    Raises:
        ContextError: a setting is not a :class:`SaleContext` field.
        PoolError: the pool is missing or malformed, or names an agent ``sale``.
        WeightsError: the weights do not fit the pool.
        SessionsError: ``sessions`` is a URL that names no session store.
        PoolError: an agent's ``max_concurrency`` is below ``workers`` (or ``$SALE_GATEWAY_WORKERS`` is not
            a positive integer).
    """
    store = sessions if isinstance(sessions, SessionStore) else open_sessions(sessions, session_idle_s)
    over = {"check_endpoints": False, **dict(settings or {})}
    ctx = route_context(context, pool, over, "create_gateway_app setting")
    refuse_settings(ctx, EXECUTION_KEYS, "create_gateway_app setting",
                    "the gateway only routes, and the client's request bounds the winner's answer (max_tokens, tools)")
    refuse_settings(ctx, ("auction_per",), "create_gateway_app setting",
                    "a session (x-sale-session or the request's user) pins a conversation to its first winner")
    refuse_settings(ctx, ("approve_before_execute",), "create_gateway_app setting",
                    "a request cannot pause for a human's approval")
    resolved = ctx.resolved_pool()
    if SALE_MODEL in resolved.names:
        raise PoolError(f"{resolved.source}: an agent is named {SALE_MODEL!r}, the gateway's auction model; rename it")
    ctx.resolved_weights().check_judges(resolved.names)
    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")
    workers = workers_from_env() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise PoolError(f"workers must be a positive integer (the gateway workers sharing the pool's endpoints), got {workers!r}")
    slots = share_endpoints(resolved.agents, workers, resolved.source)  # this process's share of every endpoint
    keys = api_keys or ClientKeys()
    metrics = GatewayMetrics(shared_sessions=store.shared)
    for name, count in slots.items():
        metrics.slots.labels(name).set(count)
    redact = Redactor.for_pool(resolved, keys)
    return Gateway(
        context=ctx, pool=resolved, auctions=AuctionStep(ctx, model_factory=model_factory, memory=memory),
        sessions=store, upstream=Upstream(redact, metrics), metrics=metrics,
        keys=keys, redact=redact, max_body_bytes=max_body_bytes, workers=workers, slots=slots,
    )


__all__ = ["DEFAULT_SESSION_IDLE_S", "WORKERS_ENV", "Gateway", "build_gateway", "workers_from_env"]
