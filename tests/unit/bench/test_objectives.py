"""The two-stage fit, its robust objectives and the no-signal error, on markets whose answers are known by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sale_graph.bench.cli.commands import main
from sale_graph.bench.fit.programme import NoSignalError, primary_value
from sale_graph.bench.fit.weights import fit_weights
from sale_graph.bench.market.market import Market
from sale_graph.bench.routers.auction import AuctionRouter
from tests.unit.bench.markets import BOTH, COST, A, B, objectives_market, record

NONE = [A] * 10
X_AND_Y = [B] * 8 + [A] * 2


def picks(market: Market, res) -> list[str]:
    return [market.agents[i] for i in res.selection]


def test_min_max_is_solved_in_two_stages_to_the_lexicographic_optimum() -> None:
    # "large on X and Y" and "large on all" both reach the min-max optimum 0.5; only stage 2 (the mean,
    # with the maximum held within the tolerance) tells them apart: 0.35 against 0.45.
    market = Market.from_records(objectives_market())
    res = fit_weights(market, objective="minmax")
    assert picks(market, res) == X_AND_Y
    assert res.objective_value == pytest.approx(0.5) and res.mean_regret == pytest.approx(0.35)
    assert res.status == "optimal" and [s["stage"] for s in res.meta["stages"]] == [1, 2]
    assert all(s["gap_asked"] == 1e-6 and s["status"] == "optimal" for s in res.meta["stages"])
    assert "stage 1: optimal" in res.meta["status_detail"] and "stage 2: optimal" in res.meta["status_detail"]
    # the replayed live rule makes the programme's picks
    assert list(AuctionRouter(res.weights).choose(market, np.arange(10))) == [market.agents.index(a) for a in X_AND_Y]


def test_mean_and_per_bin_maximum_prefer_the_cheap_agent_here() -> None:
    market = Market.from_records(objectives_market())
    mean = fit_weights(market, objective="mean")
    assert picks(market, mean) == NONE and mean.objective_value == pytest.approx(0.1)
    assert [s["stage"] for s in mean.meta["stages"]] == [1]  # one stage: the mean is the objective
    binmax = fit_weights(market, objective="binmax")  # bin means (0, 0.25, 0) against (0.5, 0.375, 0) for X+Y
    assert picks(market, binmax) == NONE and binmax.objective_value == pytest.approx(0.25)
    assert binmax.mean_regret == pytest.approx(0.1)


@pytest.mark.parametrize("alpha, expected, value, mean", [
    (0.5, NONE, 0.2, 0.1),      # worst 5 of 10 tasks: (1 + 0 + 0 + 0 + 0) / 5 against 0.5 for X+Y
    (0.8, NONE, 0.5, 0.1),      # worst 2: none, X+Y and all tie at 0.5; stage 2 takes the least mean
    (0.9, X_AND_Y, 0.5, 0.35),  # worst 1 = the maximum: as min-max
])
def test_cvar_moves_from_the_mean_to_the_maximum(alpha: float, expected: list[str], value: float, mean: float) -> None:
    market = Market.from_records(objectives_market())
    res = fit_weights(market, objective="cvar", cvar_alpha=alpha)
    assert picks(market, res) == expected
    assert res.objective_value == pytest.approx(value) and res.mean_regret == pytest.approx(mean)
    assert res.meta["cvar_alpha"] == alpha


def test_primary_values_by_hand() -> None:
    regret = np.array([1.0, 0.0, 0.5, 0.5])
    matters = np.array([True, True, True, False])
    bins = np.array([0, 0, 1, 1])
    assert primary_value("minmax", regret, matters, bins, 0.9) == 1.0
    assert primary_value("mean", regret, matters, bins, 0.9) == 0.5  # over every task
    assert primary_value("binmax", regret, matters, bins, 0.9) == 0.5  # bin 0: (1 + 0) / 2, bin 1: 0.5
    assert primary_value("cvar", regret, matters, bins, 2 / 3) == 1.0  # worst third of 3 tasks
    assert primary_value("cvar", regret, matters, bins, 0.0) == pytest.approx(0.5)  # alpha 0: the mean over D


def test_no_signal_is_an_error_not_an_optimum(tmp_path) -> None:
    # Every agent fails every dev task (as on the first recorded market): no weights change the regret.
    fails = {A: False, B: False}
    recs = [record(f"t{k}", fails, COST, {A: 0.2, B: 0.8}) for k in range(4)]
    market = Market.from_records(recs)
    for objective in ("minmax", "cvar", "binmax", "mean"):
        with pytest.raises(NoSignalError, match="no dev task where the choice of agent changes the regret"):
            fit_weights(market, objective=objective)
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert main(["fit", "--log", str(log), "--out", str(tmp_path / "w.json")]) == 2
    assert not (tmp_path / "w.json").exists()


def test_the_cli_prints_every_stage_with_its_gap(tmp_path, capsys) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in objectives_market()))
    assert main(["fit", "--log", str(log), "--out", str(tmp_path / "w.json"), "--objective", "minmax", "--no-ablations"]) == 0
    out = capsys.readouterr().out
    assert "stage 1: optimal, gap 0 (asked 1e-06)" in out and "stage 2: optimal" in out
    meta = json.loads((tmp_path / "w.json").read_text())["meta"]
    assert meta["objective"] == "minmax" and meta["fit"]["split"] == "dev" and meta["fit"]["tasks"] == 10
    assert len(meta["fit"]["task_ids_sha256"]) == 64 and len(meta["fit"]["task_digests"]) == 10


def test_a_both_pass_market_has_signal_through_cost() -> None:
    # Both agents pass and the jury prefers large's bid, so some weights let large win: the cheaper execution is
    # the oracle, the choice matters (cost), and the fit is no error.
    market = Market.from_records([record(f"t{k}", BOTH, COST, {A: 0.2, B: 0.8}) for k in range(3)])
    res = fit_weights(market, objective="cvar")
    assert picks(market, res) == [A, A, A] and res.mean_regret == 0.0
