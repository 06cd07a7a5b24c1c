"""Memory records: validation, ids, and round trips through Chroma metadata and JSON."""

from __future__ import annotations

import json
import re

import pytest

from sale_graph.memory import StrategyRecord, strategy_id
from tests.unit.memory.helpers import bid

pytestmark = pytest.mark.disable_socket


def test_record_round_trips_through_chroma_and_dict() -> None:
    rec = bid("qwen-4b", won=True, auction_id="a1", task="find x", domain="search", task_id="t1", outcome="passed")
    rid, doc, meta = rec.to_chroma()
    assert all(isinstance(v, (str, int, float, bool)) for v in meta.values())
    assert json.loads(meta["jury_scores"]) == {"large": 4.5, "small": 3.0}
    assert StrategyRecord.from_chroma(doc, meta) == rec
    assert StrategyRecord.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec
    assert rid == strategy_id("a1", "qwen-4b", "original")


def test_ids_are_deterministic_and_separator_safe() -> None:
    assert strategy_id("a", "b", "original") == strategy_id("a", "b", "original")
    assert strategy_id("a::b", "c", "original") != strategy_id("a", "b::c", "original")
    assert strategy_id("a", "b", "original") != strategy_id("a", "b", "refined")


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"round": "final"}, "round must be one of"),
        ({"outcome": "ok"}, "outcome must be one of"),
        ({"cost": float("nan")}, "cost must be finite"),
        ({"agent": " "}, "agent must be a non-empty"),
        ({"jury_scores": {"j": "high"}}, "jury_scores['j'] must be a number"),
    ],
)
def test_bad_records_are_rejected_with_the_field_named(kwargs: dict, fragment: str) -> None:
    base = dict(agent="a", strategy="s", cost=0.1, entropy=0.2, value=0.3)
    base.update(kwargs)
    with pytest.raises(ValueError, match=re.escape(fragment)):
        StrategyRecord(**base)


def test_from_dict_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="unknown StrategyRecord field"):
        StrategyRecord.from_dict({"agent": "a", "strategy": "s", "cost": 1, "entropy": 0, "value": 0, "wonn": True})
