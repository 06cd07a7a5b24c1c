"""The SYNTHETIC market's signal knob, its stamps, the sweep, and the cost-quality curves (AIQ, dominance)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sale_graph.bench.cli.commands import main
from sale_graph.bench.fit.programme import imputed_gamma
from sale_graph.bench.fit.weights import fit_weights
from sale_graph.bench.market.market import Market
from sale_graph.bench.report.build import build_report, run_report, write_report
from sale_graph.bench.report.curves import aiq, dominance, frontier
from sale_graph.bench.routers.auction import AuctionRouter
from sale_graph.bench.routers.base import evaluate
from sale_graph.bench.routers.simple import SingleAgentRouter
from sale_graph.bench.routers.text import EmbeddingStore
from sale_graph.bench.synthetic.generator import SYNTHETIC_POOL, synthetic_records
from sale_graph.bench.synthetic.sweep import sweep_point


def test_the_signal_sets_how_much_entropy_and_jury_say_about_outcomes() -> None:
    for q, lo, hi in ((0.0, -0.1, 0.1), (0.5, 0.35, 0.65), (1.0, 0.85, 1.0)):
        m = Market.from_records(synthetic_records(600, seed=1, signal=q)[0])
        ok = m.bid_ok
        jury = imputed_gamma(m.gamma).mean(axis=2)[ok]
        # <= hi: at full signal the correlation is 1 up to rounding, and numpy 2.4 rounds it to exactly 1.0
        assert lo < np.corrcoef(m.entropy[ok], m.passed[ok])[0, 1] <= hi, q
        assert lo < np.corrcoef(jury, m.passed[ok])[0, 1] <= hi, q
    # the outcomes do not depend on the signal (same seed): only what SALE can see changes
    a, b = (Market.from_records(synthetic_records(50, seed=2, signal=q)[0]) for q in (0.0, 1.0))
    assert (a.passed == b.passed).all() and (a.plain_cost == b.plain_cost).all()


def test_generic_agents_lengths_and_text_hints() -> None:
    records, vectors = synthetic_records(300, seed=4)
    m = Market.from_records(records)
    assert m.agents == ["small", "medium", "large", "xlarge"] and m.price_out.tolist() == [p for _, p in SYNTHETIC_POOL]
    assert m.has_plain and m.synthetic and m.synthetic["signal"] == 0.5
    tokens = m.plain_tokens.mean(axis=0)
    assert tokens[0] > tokens[-1]  # the small agent is the most verbose
    hard = np.array(["very hard" in t or " hard," in t for t in m.texts])
    assert m.plain_passed[hard].mean() < m.plain_passed[~hard].mean()  # the text's hint says something
    assert vectors.shape == (300, 32)


def test_synthetic_outputs_say_synthetic(tmp_path) -> None:
    log = tmp_path / "syn.jsonl"
    assert main(["synthetic", "--out", str(log), "--signal", "0.7", "--seed", "3", "--tasks", "120"]) == 0
    assert main(["synthetic", "--out", str(log), "--signal", "1.5"]) == 2
    rep, _, _ = run_report(log, tmp_path / "r", figures=False)
    assert rep["meta"]["synthetic"]["signal"] == 0.7 and rep["meta"]["title"].startswith("SYNTHETIC")
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert summary.startswith("# SYNTHETIC SALE benchmark report") and "**SYNTHETIC**" in summary
    assert json.loads((tmp_path / "r" / "report.json").read_text())["meta"]["synthetic"]["seed"] == 3


def _sale_vs_largest(signal: float) -> tuple[float, float, float, float]:
    m = Market.from_records(synthetic_records(300, seed=0, signal=signal)[0])
    test = m.indices("test")
    fit = fit_weights(m, objective="cvar", time_limit_s=2.0, gap=1e-4, evaluate=False)
    sale = evaluate(AuctionRouter(fit.weights), m, test)
    big = evaluate(SingleAgentRouter(m.agents[m.largest]), m, test)
    return float(sale.passed.mean()), float(sale.cost.mean()), float(big.passed.mean()), float(big.cost.mean())


def test_the_harness_tells_good_signal_from_none() -> None:
    sale_pass, sale_cost, big_pass, big_cost = _sale_vs_largest(1.0)
    assert sale_pass >= big_pass - 0.01 and sale_cost < 0.7 * big_cost  # matches the largest agent, clearly cheaper
    sale_pass, sale_cost, big_pass, big_cost = _sale_vs_largest(0.0)
    assert sale_pass < big_pass - 0.05  # no signal: the auction cannot find the tasks the small agents solve


def test_one_sweep_point_has_every_router() -> None:
    row = sweep_point(1.0, n_tasks=200, seed=1, objectives=("cvar",), time_limit_s=2.0)
    assert set(row["routers"]) == {"sale:cvar", "largest", "knn", "oracle"}
    assert row["routers"]["oracle"]["pass_at_1"] >= row["routers"]["largest"]["pass_at_1"]
    assert "status" in row["fits"]["cvar"]


def test_frontier_and_aiq_by_hand() -> None:
    pts = [(1.0, 0.5), (2.0, 0.6), (3.0, 0.9), (2.5, 0.4)]
    # (2.5, 0.4) is dominated; (2.0, 0.6) lies under the chord from (1, .5) to (3, .9) (which passes .7 at 2)
    assert frontier(pts) == [(1.0, 0.5), (3.0, 0.9)]
    # over [0, 4]: 0 below cost 1, the chord from 1 to 3 (area 2 * 0.7), 0.9 from 3 to 4: (1.4 + 0.9) / 4
    assert aiq(pts, 0.0, 4.0) == pytest.approx(2.3 / 4, abs=1e-3)
    assert aiq([(2.0, 0.8)], 0.0, 4.0) == pytest.approx(0.8 * 2 / 4, abs=1e-3)  # one point: a step


def test_dominance_names_who_dominates_whom() -> None:
    points = {"a": (1.0, 0.5), "b": (2.0, 0.5), "c": (0.5, 0.7), "oracle": (0.1, 1.0)}
    assert dominance(points) == {"a": ["c"], "b": ["c", "a"]}


def test_report_has_curves_aiq_and_per_source_tables(tmp_path) -> None:
    records, vectors = synthetic_records(150, seed=3)
    m = Market.from_records(records)
    store = EmbeddingStore()
    store.put(m.task_ids, m.texts, vectors)
    rep = build_report(m, store=store, n_boot=100)
    curves = rep["curves"]
    assert set(curves["curves"]) == {"knn", "mlp", "cascade", "sale"}
    assert [p["setting"] for p in curves["curves"]["cascade"]][-1] == 1.01
    assert all(0.0 <= v <= 1.0 for v in curves["aiq"].values())
    assert set(rep["stats_by_source"]) == {"synthetic coding", "synthetic search"}
    write_report(rep, tmp_path, figures=False)
    summary = (tmp_path / "summary.md").read_text()
    assert "## Per source" in summary and "| AIQ |" in summary and "dominated by" in summary
    assert "[" in summary.split("### all: pass@1 % [95% CI] per bin")[1].splitlines()[4]  # per-bin cells carry intervals
