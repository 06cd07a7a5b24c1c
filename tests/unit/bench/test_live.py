"""Live runs (SALE with memory over task orders): the log, the report's live section, and mixes with a market log."""

from __future__ import annotations

import json

import pytest

from sale_graph import build_sale_graph
from sale_graph.bench.market.errors import MarketError
from sale_graph.bench.market.log import read_log
from sale_graph.bench.market.market import Market
from sale_graph.bench.report.build import run_report
from sale_graph.bench.report.live import live_section, refined_saving
from sale_graph.bench.runs.live import run_live, task_order
from sale_graph.bench.runs.record import RecordSettings
from sale_graph.bench.tasks.schema import task_from_dict
from tests.fakes import FakeFactory, pool_of
from tests.unit.bench.markets import BOTH, COST, ONLY_LARGE, A, B, record

PRICES = [{"name": A, "model": A, "price_input": 1.0, "price_output": 1.0},
          {"name": B, "model": B, "price_input": 2.0, "price_output": 2.0}]


def live(tid: str, order: int, position: int, winner: str, passed: bool, cost: float, refined: bool = False,
         exec_tokens: tuple[int, int] = (1000, 1000), refine_cost: float = 0.0) -> dict:
    by_phase = {"bid": {"input_tokens": 10, "output_tokens": 10, "cost_usd": 1e-5},
                "execute": {"input_tokens": exec_tokens[0], "output_tokens": exec_tokens[1], "cost_usd": cost}}
    if refined:
        by_phase["refine"] = {"input_tokens": 10, "output_tokens": 10, "cost_usd": refine_cost}
    return {"schema": 2, "kind": "live", "order": order, "position": position, "seed": 7,
            "task": {"id": tid, "domain": "search", "text": tid, "bin": 0, "bin_source": "proxy:test", "split": "test"},
            "agents": PRICES, "winner": winner, "winner_round": "refined" if refined else "original",
            "provisional_winner": B if refined else winner, "passed": passed, "cost_usd": cost, "by_phase": by_phase}


def test_market_refuses_a_live_record_with_a_clear_error() -> None:
    with pytest.raises(MarketError, match="is a live run"):
        Market.from_records([live("t1", 0, 0, A, True, 1.0)])


def test_refined_saving_is_the_price_gap_on_the_execution_less_the_refinement() -> None:
    rec = live("t1", 0, 0, A, True, 0.002, refined=True, exec_tokens=(1000, 3000), refine_cost=1e-4)
    # provisional winner large (2 $/M in and out), winner small (1 $/M): 4000 tokens * 1 $/M = 0.004, less 0.0001
    assert refined_saving(rec, {A: (1.0, 1.0), B: (2.0, 2.0)}) == pytest.approx(0.004 - 1e-4)


def test_live_section_per_order_and_intervals_across_orders() -> None:
    recs = [live("t1", 0, 0, A, True, 1.0), live("t2", 0, 1, B, True, 2.0), live("t3", 0, 2, A, False, 1.0, refined=True),
            live("t3", 1, 0, B, True, 2.0), live("t1", 1, 1, A, True, 1.0), live("t2", 1, 2, A, True, 1.0, refined=True)]
    sec = live_section(recs)
    assert sec["orders"] == 2 and sec["largest_agent"] == B and sec["seeds"] == [7]
    o0, o1 = sec["per_order"]["0"], sec["per_order"]["1"]
    assert o0["pass_at_1"] == pytest.approx(2 / 3) and o1["pass_at_1"] == 1.0
    assert o0["cost_usd"] == 4.0 and o1["cost_usd"] == 4.0
    assert o0["largest_share"] == pytest.approx(1 / 3) and o1["largest_share"] == pytest.approx(1 / 3)
    assert o0["refined_wins"] == 1 and o0["refined_pass_at_1"] == 0.0 and o1["refined_pass_at_1"] == 1.0
    s = sec["summary"]
    assert s["pass_at_1"]["mean"] == pytest.approx(5 / 6) and s["pass_at_1"]["n"] == 2
    lo, hi = s["pass_at_1"]["ci95"]
    assert lo < 5 / 6 < hi
    assert s["cost_usd"]["ci95"] == pytest.approx([4.0, 4.0])  # no spread across orders, no width
    # small agents' share of wins as tasks arrive, per order (in task position order)
    assert sec["curves"] == [[1.0, 0.5, pytest.approx(2 / 3)], [0.0, 0.5, pytest.approx(2 / 3)]]


def test_report_reads_a_live_log_alone_and_beside_a_market_log(tmp_path) -> None:
    live_log = tmp_path / "live.jsonl"
    recs = [live(f"t{k}", o, p, A if (k + o) % 2 else B, bool(k % 2), 1.0) for o in range(3) for p, k in enumerate((0, 1, 2))]
    live_log.write_text("".join(json.dumps(r) + "\n" for r in recs))
    rep, paths, _ = run_report(live_log, tmp_path / "live-only", figures=True)
    assert rep["live"]["orders"] == 3 and "stats" not in rep
    summary = (tmp_path / "live-only" / "summary.md").read_text()
    assert "SALE live, with memory (3 task orders" in summary and "pass@1" in summary
    assert (tmp_path / "live-only" / "small_share_over_time.png").is_file()
    # beside a market log of the same tasks: the replayed SALE and largest agent on those tasks come along
    market_log = tmp_path / "market.jsonl"
    dev = [record(f"d{k}", BOTH if k % 2 else ONLY_LARGE, COST, {A: 0.2, B: 0.8}) for k in range(4)]
    test = [record(f"t{k}", BOTH, COST, {A: 0.2, B: 0.8}, split="test") for k in range(3)]
    market_log.write_text("".join(json.dumps(r) + "\n" for r in dev + test))
    rep, _, _ = run_report([market_log, live_log], tmp_path / "mixed", text_routers=False, figures=False)
    assert rep["meta"]["tasks"] == 3 and rep["live"]["orders"] == 3
    assert rep["live"]["vs_replay"]["sale"]["tasks"] == 3
    full = json.loads((tmp_path / "mixed" / "report.json").read_text())
    assert full["live"]["summary"]["pass_at_1"]["n"] == 3


def test_a_first_format_live_record_reads_as_order_zero(tmp_path) -> None:
    old = {"schema": 1, "kind": "live", "task": {"id": "t1", "domain": "search", "text": "t", "bin": 0, "bin_source": "proxy:x"},
           "winner": A, "provisional_winner": A, "passed": True, "cost_usd": 0.5, "by_phase": {}, "agents": [A, B]}
    log = tmp_path / "old.jsonl"
    log.write_text(json.dumps(old) + "\n")
    rep, _, _ = run_report(log, tmp_path / "r", figures=False)
    assert rep["live"]["per_order"]["0"]["pass_at_1"] == 1.0
    assert rep["live"]["largest_agent"] is None  # bare names: prices unknown without a market log


def test_run_live_orders_with_a_fresh_memory_each(tmp_path) -> None:
    factory = FakeFactory({"bid": lambda a, m: "1. search 2. answer", "jury": lambda a, m: "SCORE: 4",
                           "refine": lambda a, m: "1. search twice 2. answer", "execute": lambda a, m: "Final Answer: Paris"})
    graph = build_sale_graph(model_factory=factory, tools=[]).compile()
    tasks = [task_from_dict({"id": f"q{k}", "domain": "search", "text": f"Capital of France? ({k})", "gold": ["Paris"],
                             "bin": 0, "bin_source": "proxy:x", "split": "test"}) for k in range(2)]
    out = tmp_path / "live.jsonl"
    s = run_live(tasks, pool_of((A, 0.05), (B, 0.36)), out, settings=RecordSettings(), progress=False, orders=2, seed=3,
                 graph=graph)
    assert s.ran == 4 and s.passed == 4
    recs = read_log(out).records
    assert [(r["order"], r["task"]["id"]) for r in recs] == [
        (k, tasks[j].id) for k in range(2) for j in task_order(2, 3, k)]
    assert all(r["agents"][0]["price_output"] == 0.05 for r in recs)
    assert (tmp_path / "live.jsonl.memory" / "order-0").is_dir() and (tmp_path / "live.jsonl.memory" / "order-1").is_dir()
    again = run_live(tasks, pool_of((A, 0.05), (B, 0.36)), out, progress=False, orders=2, seed=3, graph=graph)
    assert again.ran == 0 and again.done_before == 4
