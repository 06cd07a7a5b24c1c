"""Weights files and ledger totals."""

from __future__ import annotations

from pathlib import Path

import pytest

from sale_graph.cli.report import ledger_totals
from sale_graph.errors import WeightsError
from sale_graph.weights import DEFAULT_WEIGHTS, Weights, load_weights


def test_defaults_are_documented_values() -> None:
    w = load_weights(None)
    assert (w.w_c, w.w_h) == (None, 0.5)  # w_c: scaled to the pool's prices when the pool is known
    assert w.jury_weights(["a", "b", "c", "d"]) == [0.25] * 4
    scaled = w.for_prices({"a": 0.05, "b": 0.36})
    assert scaled.w_c == pytest.approx(0.2 * 1.5 / (0.36 * 130)) and scaled.cost_rule.startswith("pool-scaled")


def test_round_trip_json_and_toml(tmp_path: Path) -> None:
    w = Weights(w_c=0.02, w_h=0.3, jury={"a": 0.7, "b": 0.1})
    back = load_weights(w.save(tmp_path / "w.json"))
    assert back.to_dict() == w.to_dict()
    toml = tmp_path / "w.toml"
    toml.write_text('w_c = 0.02\nw_h = 0.3\n[jury]\na = 0.7\n')
    t = load_weights(toml)
    assert t.jury_weights(["a", "b"]) == [0.7, 0.5]


def test_bad_weights_are_named(tmp_path: Path) -> None:
    p = tmp_path / "w.json"
    p.write_text('{"w_c": -1}')
    with pytest.raises(WeightsError, match="'w_c' must be a finite non-negative"):
        load_weights(p)
    p.write_text('{"w_x": 1}')
    with pytest.raises(WeightsError, match="unknown key"):
        load_weights(p)
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights(tmp_path / "none.json")
    assert DEFAULT_WEIGHTS.source == "defaults"


def test_ledger_totals_and_overhead_share() -> None:
    ledger = [
        {"phase": "bid", "agent": "a", "input_tokens": 10, "output_tokens": 20, "cost_usd": 0.1, "seconds": 1.0},
        {"phase": "jury", "agent": "b", "input_tokens": 5, "output_tokens": 5, "cost_usd": 0.05, "seconds": 0.5},
        {"phase": "execute", "agent": "a", "input_tokens": 100, "output_tokens": 60, "cost_usd": 0.85, "seconds": 3.0},
        {"phase": "execute", "agent": "a", "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "seconds": 0.1},
    ]
    t = ledger_totals(ledger)
    assert t.total_tokens == 200 and t.auction_tokens == 40
    assert t.auction_token_share == pytest.approx(0.2)
    assert t.auction_cost_share == pytest.approx(0.15)
    assert t.by_phase_agent[("execute", "a")]["calls"] == 2
    assert t.by_phase["bid"]["output_tokens"] == 20


def test_usage_estimate_is_marked_in_the_ledger() -> None:
    from langchain_core.messages import AIMessage

    from sale_graph.llm import ledger_entry, usage_of
    from sale_graph.pool import AgentSpec

    agent = AgentSpec(name="a", model="m", base_url="http://127.0.0.1:9/v1", price_input=1.0, price_output=2.0)
    inp, out, reported = usage_of(AIMessage(content="x" * 40), "x" * 40)
    assert (inp, out, reported) == (0, 10, False)
    entry = ledger_entry("bid", agent, inp, out, 0.1, reported)
    assert entry["estimated"] is True and entry["cost_usd"] == pytest.approx(10 * 2.0 / 1e6)
    real = AIMessage(content="hi", usage_metadata={"input_tokens": 3, "output_tokens": 1, "total_tokens": 4})
    assert usage_of(real, "hi") == (3, 1, True)
    assert "estimated" not in ledger_entry("bid", agent, 3, 1, 0.1, True)
