"""`sale bench record` logs plain executions beside the plan-following ones (fake models, no sockets)."""

from __future__ import annotations

import pytest

from sale_graph.bench.market.log import read_log
from sale_graph.bench.market.market import Market
from sale_graph.bench.routers.base import evaluate
from sale_graph.bench.routers.simple import SingleAgentRouter
from sale_graph.bench.runs.record import PLAIN_STRATEGY, RecordSettings, record_tasks
from sale_graph.bench.tasks.schema import task_from_dict
from sale_graph.services import SaleServices
from tests.fakes import FakeFactory, pool_of, prompt_text

TASKS = [task_from_dict({"id": f"q{k}", "domain": "search", "text": "Capital of France?", "gold": ["Paris"], "bin": 0,
                         "bin_source": "proxy:x", "split": "test"}) for k in range(2)]
POOL = pool_of(("small", 0.05), ("large", 0.36))


def _execute(agent: str, messages) -> str:
    # the small agent answers right only when it has a real plan; without one it guesses
    text = prompt_text(messages)
    return "Final Answer: Paris" if agent == "large" or PLAIN_STRATEGY not in text else "Final Answer: Lyon"


def _services() -> SaleServices:
    return SaleServices(model_factory=FakeFactory({"bid": lambda a, m: "1. look it up 2. answer",
                                                   "jury": lambda a, m: "SCORE: 4", "execute": _execute}), tools=[])


def test_plain_executions_are_recorded_and_baselines_use_them(tmp_path) -> None:
    log = tmp_path / "log.jsonl"
    s = record_tasks(TASKS, POOL, str(log), RecordSettings(), services=_services(), progress=False)
    assert s.recorded == 2
    rec = read_log(log).records[0]
    assert rec["kind"] == "market"
    assert [e["mode"] for e in rec["executions"]] == ["plan", "plan"]
    assert [e["mode"] for e in rec["plain_executions"]] == ["plain", "plain"]
    assert not any(e["strategy_used"] for e in rec["plain_executions"])
    m = Market.from_log(log)
    assert m.has_plain and m.passed[:, 0].all() and not m.plain_passed[:, 0].any()
    small = evaluate(SingleAgentRouter("small"), m, m.indices("test"))
    assert not small.passed.any() and (small.overhead_cost == 0).all()  # plain: no plan, nothing charged for one


def test_without_plain_executions_baselines_are_charged_for_the_plan(tmp_path) -> None:
    log = tmp_path / "log.jsonl"
    record_tasks(TASKS, POOL, str(log), RecordSettings(plain=False), services=_services(), progress=False)
    m = Market.from_log(log)
    assert not m.has_plain and "plain_executions" not in read_log(log).records[0]
    small = evaluate(SingleAgentRouter("small"), m, m.indices("test"))
    assert small.passed.all() and (small.overhead_cost == m.bid_cost[:, 0]).all()
    # a log holds one kind: resuming in the other mode is refused
    with pytest.raises(ValueError, match="a log holds one kind"):
        record_tasks(TASKS, POOL, str(log), RecordSettings(plain=True), services=_services(), progress=False)
