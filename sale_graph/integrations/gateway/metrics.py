"""The gateway's Prometheus metrics (``GET /metrics``, the text exposition format).

One :class:`GatewayMetrics` per app, in its own registry (several apps in one process
do not mix their counts). With ``PROMETHEUS_MULTIPROC_DIR`` set (several workers), the
counts of every worker process are summed, as ``prometheus_client`` does in its
multiprocess mode.

* ``sale_gateway_turns_total{kind}``: chat requests by how they were answered: ``auction`` (a new
  auction), ``pinned`` (a session's pin), ``continued`` (the tool results of a turn's auction),
  ``direct`` (a pool agent named as the model);
* ``sale_gateway_auctions_total{result}``: auctions run, ``ok`` or ``failed``;
* ``sale_gateway_wins_total{agent}``: auctions won;
* ``sale_gateway_fallbacks_total{from_agent,to_agent}``: answers by the runner-up after the winner's endpoint failed;
* ``sale_gateway_tokens_total{phase,agent,kind}``: tokens (``input``, ``output``) by phase (``bid``,
  ``jury``, ``refine``, ``execute``) and agent;
* ``sale_gateway_cost_dollars_total{phase,agent}``: dollars at the pool's prices;
* ``sale_gateway_auction_seconds``: time of an auction (histogram);
* ``sale_gateway_upstream_seconds{agent}``: time of a forwarded request until its answer is complete,
  a stream's included (histogram);
* ``sale_gateway_errors_total{status,code}``: error answers;
* ``sale_gateway_sessions``: pins alive (sessions, and turns awaiting their tool results): the workers'
  sum with in-process stores, the shared store's count (the workers' largest) with a shared one;
* ``sale_gateway_requests_in_flight``: chat requests being answered;
* ``sale_gateway_endpoint_slots{agent}``: the concurrency slots this gateway holds at the agent's endpoint
  (its share of ``max_concurrency``, 0: no bound), summed over the workers: at most ``max_concurrency``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
AUCTION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
UPSTREAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class GatewayMetrics:
    """The gateway's counters and histograms, in a registry of their own.

    Args:
        shared_sessions: the workers share one session store (each counts all its pins, so the
            workers' counts are not summed).
    """

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, shared_sessions: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.turns = Counter("sale_gateway_turns", "Chat requests by how they were answered", ["kind"], registry=r)
        self.auctions = Counter("sale_gateway_auctions", "Auctions run, by result", ["result"], registry=r)
        self.wins = Counter("sale_gateway_wins", "Auctions won, by agent", ["agent"], registry=r)
        self.fallbacks = Counter("sale_gateway_fallbacks", "Answers by the runner-up after the winner failed",
                                 ["from_agent", "to_agent"], registry=r)
        self.tokens = Counter("sale_gateway_tokens", "Tokens by phase, agent and kind", ["phase", "agent", "kind"], registry=r)
        self.dollars = Counter("sale_gateway_cost_dollars", "Dollars at the pool's prices, by phase and agent",
                               ["phase", "agent"], registry=r)
        self.auction_seconds = Histogram("sale_gateway_auction_seconds", "Time of an auction", buckets=AUCTION_BUCKETS, registry=r)
        self.upstream_seconds = Histogram("sale_gateway_upstream_seconds", "Time of a forwarded request until its answer is complete",
                                          ["agent"], buckets=UPSTREAM_BUCKETS, registry=r)
        self.errors = Counter("sale_gateway_errors", "Error answers by status and code", ["status", "code"], registry=r)
        self.sessions = Gauge("sale_gateway_sessions", "Pins alive", registry=r,
                              multiprocess_mode="livemax" if shared_sessions else "livesum")
        self.in_flight = Gauge("sale_gateway_requests_in_flight", "Chat requests being answered", registry=r,
                               multiprocess_mode="livesum")
        self.slots = Gauge("sale_gateway_endpoint_slots", "Concurrency slots held at the agent's endpoint (0: no bound)",
                           ["agent"], registry=r, multiprocess_mode="livesum")

    def ledger(self, entries: Iterable[Mapping[str, Any]]) -> None:
        """Count the tokens and dollars of ledger lines (``phase``, ``agent``, ``input_tokens``, ``output_tokens``, ``cost_usd``)."""
        for e in entries:
            phase, agent = str(e.get("phase", "?")), str(e.get("agent", "?"))
            self.tokens.labels(phase, agent, "input").inc(int(e.get("input_tokens") or 0))
            self.tokens.labels(phase, agent, "output").inc(int(e.get("output_tokens") or 0))
            self.dollars.labels(phase, agent).inc(float(e.get("cost_usd") or 0.0))

    def error(self, status: int, code: str) -> None:
        """Count one error answer."""
        self.errors.labels(str(status), code).inc()

    def render(self) -> bytes:
        """The metrics in the Prometheus text format (every worker's, in multiprocess mode)."""
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


__all__ = ["GatewayMetrics"]
