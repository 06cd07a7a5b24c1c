"""From an auction's graph state to the memory: bids, labels and the degraded flag."""

from __future__ import annotations

from typing import Any

import pytest

from sale_graph.memory import AuctionMemory
from sale_graph.memory.bridge import store_auction

pytestmark = pytest.mark.disable_socket


def _state(degraded: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "auction_id": "a1",
        "task": "find the capital of peru",
        "domain": "search",
        "bids": [{"agent": a, "round": "original", "strategy": f"{a} plan", "status": "ok"} for a in ("big", "small")],
        "scores": [
            {"agent": a, "round": "original", "cost": 0.1, "entropy": 0.4, "value": 0.5, "jury": {"big": 4.0, "small": None}}
            for a in ("big", "small")
        ],
        "selection": {"winner": "big", "round": "original"},
        "degraded": degraded,
    }


def test_store_auction_records_the_degraded_flag(memory: AuctionMemory, tmp_path) -> None:
    degraded = {"reason": "jury quorum not met for small (original): 1/2 judges", "bids": ["small/original"], "missing_votes": []}
    assert store_auction(memory, _state(degraded)) == 2
    assert memory.stats()["degraded"] == 1
    stored = memory.get_auction("a1")
    assert [(b.agent, b.won, b.jury_scores) for b in stored] == [("big", True, {"big": 4.0}), ("small", False, {"big": 4.0})]
    path = tmp_path / "out.jsonl"
    memory.export_jsonl(path)
    assert '"degraded": true' in path.read_text() and degraded["reason"] in path.read_text()
    # A later state without the flag (a full quorum on a re-run of the auction) clears it.
    store_auction(memory, _state(None))
    assert memory.stats()["degraded"] == 0
