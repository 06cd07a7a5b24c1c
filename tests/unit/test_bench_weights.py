"""The weight MILP on small markets whose optimal weights and objective are known by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sale_graph.bench.market import Market
from sale_graph.bench.routers import SaleRouter
from sale_graph.bench.weights_fit import FitError, fit_weights, outcome_regret
from sale_graph.weights import load_weights

A, B = "small", "large"


def _record(tid: str, passed: dict[str, bool], exec_cost: dict[str, float], judge_small: dict[str, float],
            split: str = "dev", tokens: int = 10) -> dict:
    """Two agents (small $1, large $2 per 1M), equal bid lengths, zero entropy; only judge ``small`` scores."""
    agents = [{"name": A, "model": A, "price_input": 1.0, "price_output": 1.0},
              {"name": B, "model": B, "price_input": 2.0, "price_output": 2.0}]
    bids = [{"agent": a, "round": "original", "strategy": f"plan of {a}", "tokens": tokens, "entropy": 0.0,
             "entropy_source": "text", "status": "ok", "seconds": 0.1, "input_tokens": 5, "output_tokens": tokens,
             "cost_usd": 1e-6} for a in (A, B)]
    jury = []
    for bidder in (A, B):
        jury.append({"judge": A, "bidder": bidder, "round": "original", "likert": 5 * judge_small[bidder],
                     "gamma": judge_small[bidder], "status": "ok", "reason": "ok", "raw": "", "cost_usd": 0.0})
        jury.append({"judge": B, "bidder": bidder, "round": "original", "likert": 0.0, "gamma": 0.0,
                     "status": "ok", "reason": "ok", "raw": "", "cost_usd": 0.0})
    execs = [{"agent": a, "status": "completed", "passed": passed[a], "cost_usd": exec_cost[a], "input_tokens": 10,
              "output_tokens": 10, "seconds": 1.0} for a in (A, B)]
    return {"task": {"id": tid, "domain": "search", "text": tid, "bin": 0, "bin_source": "proxy:test", "split": split},
            "agents": agents, "bids": bids, "jury": jury, "executions": execs}


def test_zero_regret_market_is_solved_exactly(tmp_path) -> None:
    # t1: both pass -> small is the oracle; t2: only large passes; t3: only small passes.
    # Cost feature (price*tokens / max): small 0.5, large 1.0. Judge 'small' likes large's bid on t2 only.
    # Weights with w_jury[small] > 0.5 * w_c~ + delta pick (small, large, small): every pick is the oracle, Q = 0.
    recs = [
        _record("t1", {A: True, B: True}, {A: 1.0, B: 2.0}, {A: 0.0, B: 0.0}),
        _record("t2", {A: False, B: True}, {A: 1.0, B: 2.0}, {A: 0.0, B: 1.0}),
        _record("t3", {A: True, B: False}, {A: 1.0, B: 2.0}, {A: 0.0, B: 0.0}),
    ]
    market = Market.from_records(recs)
    res = fit_weights(market, objective="minmax")
    assert res.status == "optimal"
    assert res.objective_value == pytest.approx(0.0, abs=1e-6)
    assert res.max_regret == pytest.approx(0.0, abs=1e-9)
    assert [market.agents[i] for i in res.selection] == [A, B, A]
    raw = res.raw_weights
    assert raw["jury:small"] > 0.5 * raw["w_c_normalised"]
    assert sum(raw.values()) == pytest.approx(1.0)
    # The live rule replayed with the fitted weights makes the same picks.
    assert list(SaleRouter(res.weights).choose(market, np.arange(3))) == [0, 1, 0]
    assert res.meta["oracle_agreement_dev"] == 1.0 and res.meta["milp_replay_agreement_dev"] == 1.0
    # The weights file round-trips through the project's loader, with meta.
    path = res.save(tmp_path / "w.json")
    w = load_weights(path)
    assert w.w_c == pytest.approx(res.weights.w_c) and w.jury == pytest.approx(res.weights.jury)
    assert json.loads(path.read_text())["meta"]["objective"] == "minmax"


def test_min_max_value_when_no_weights_can_separate_two_tasks() -> None:
    # Identical bids on t1 and t2 but opposite outcomes: any weights pick the same agent on both.
    # cost scale = 2: u(small) = 0.5 (+2 if failed), u(large) = 1.0 (+2 if failed).
    # Pick small everywhere: regrets (0, 2.5 - 1.0 = 1.5); pick large: (3.0 - 0.5 = 2.5, 0). Min-max: small, Q = 1.5.
    recs = [
        _record("t1", {A: True, B: False}, {A: 1.0, B: 2.0}, {A: 0.0, B: 1.0}),
        _record("t2", {A: False, B: True}, {A: 1.0, B: 2.0}, {A: 0.0, B: 1.0}),
    ]
    market = Market.from_records(recs)
    z, scale = outcome_regret(market)
    assert scale == 2.0 and z.tolist() == [[0.0, 2.5], [1.5, 0.0]]
    res = fit_weights(market, objective="minmax")
    assert [market.agents[i] for i in res.selection] == [A, A]
    assert res.max_regret == pytest.approx(1.5)
    assert res.objective_value == pytest.approx(1.5 + 1e-3 * 0.75, abs=1e-6)
    mean = fit_weights(market, objective="mean")
    assert mean.objective_value == pytest.approx(0.75, abs=1e-6)
    assert [market.agents[i] for i in mean.selection] == [A, A]


def test_min_max_and_mean_disagree_where_the_worst_task_matters() -> None:
    # Judge 'small' scores large's bid 1.0 on every task, so large wins exactly when w_j > 0.5 w_c~ (all or nothing).
    # t1..t3: only small passes (large costs 2 and fails: regret of picking large = 3.0 - 0.5 = 2.5 each);
    # t4: only large passes (picking small: 2.5 - 1.0 = 1.5).
    # mean: small everywhere (mean 1.5/4) beats large everywhere (7.5/4). min-max: small (max 1.5 < 2.5). Both small.
    # Now make t4's failure of small far worse by a dearer small execution:
    recs = [_record(f"t{k}", {A: True, B: False}, {A: 1.0, B: 2.0}, {A: 0.0, B: 1.0}) for k in (1, 2, 3)]
    recs.append(_record("t4", {A: False, B: True}, {A: 8.0, B: 2.0}, {A: 0.0, B: 1.0}))
    market = Market.from_records(recs)
    # cost scale 8: picking small on t4 costs u = 1 + 2 = 3 vs large 0.25: regret 2.75;
    # picking large on t1..t3 costs u = 0.25 + 2 vs 0.125: regret 2.125 each.
    mm = fit_weights(market, objective="minmax")
    mean = fit_weights(market, objective="mean")
    assert [market.agents[i] for i in mm.selection] == [B, B, B, B]  # worst case 2.125 < 2.75
    assert mm.max_regret == pytest.approx(2.125)
    assert [market.agents[i] for i in mean.selection] == [A, A, A, A]  # mean 2.75/4 < 3*2.125/4
    assert mean.objective_value == pytest.approx(2.75 / 4, abs=1e-6)


def test_bad_arguments_are_rejected() -> None:
    market = Market.from_records([_record("t1", {A: True, B: True}, {A: 1.0, B: 2.0}, {A: 0.0, B: 0.0}, split="test")])
    with pytest.raises(FitError, match="objective"):
        fit_weights(market, objective="median")  # type: ignore[arg-type]
    with pytest.raises(FitError, match="no dev task"):
        fit_weights(market)
