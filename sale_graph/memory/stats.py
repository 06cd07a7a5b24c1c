"""Counting what the auction memory holds (``AuctionMemory.stats``, ``sale memory stats``)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sale_graph.memory.chroma import scan
from sale_graph.memory.records import OUTCOMES


def collection_stats(tasks: Any, strategies: Any) -> dict[str, Any]:
    """Counts over the memory's two collections, read page by page.

    Args:
        tasks: the tasks collection (one entry per auction).
        strategies: the strategies collection (one entry per bid).

    Returns:
        ``auctions``, ``degraded``, ``strategies``, per-agent ``agents`` (bids, wins,
        losses, refined), ``outcomes`` (every outcome, 0 included) and ``domains``.
    """
    agents: dict[str, Counter[str]] = {}
    for _id, _doc, meta in scan(strategies, ["metadatas"]):
        c = agents.setdefault(str(meta.get("agent")), Counter())
        c["bids"] += 1
        c["wins" if meta.get("won") else "losses"] += 1
        if meta.get("round") == "refined":
            c["refined"] += 1
    outcomes: Counter[str] = Counter({o: 0 for o in OUTCOMES})
    domains: Counter[str] = Counter()
    auctions = degraded = 0
    for _id, _doc, meta in scan(tasks, ["metadatas"]):
        auctions += 1
        degraded += bool(meta.get("degraded", False))
        outcomes[str(meta.get("outcome", "unknown"))] += 1
        domains[str(meta.get("domain", ""))] += 1
    return {
        "auctions": auctions,
        "degraded": degraded,
        "strategies": sum(c["bids"] for c in agents.values()),
        "agents": {name: {key: c[key] for key in ("bids", "wins", "losses", "refined")} for name, c in sorted(agents.items())},
        "outcomes": dict(outcomes),
        "domains": dict(sorted(domains.items())),
    }
