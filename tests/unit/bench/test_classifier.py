"""The llm-classifier baseline: recording one classifier call per task, parsing it, and replaying it."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from sale_graph.bench.market.log import read_log
from sale_graph.bench.market.market import Market
from sale_graph.bench.report.build import build_report, write_report
from sale_graph.bench.routers.base import evaluate
from sale_graph.bench.routers.classifier import ClassifierRouter, fallback_tasks
from sale_graph.bench.routers.simple import SingleAgentRouter
from sale_graph.bench.routers.standard import standard_routers
from sale_graph.bench.routers.text import EmbeddingStore
from sale_graph.bench.runs.classifier_call import agent_criteria, classifier_prompt, load_criteria, parse_choice
from sale_graph.bench.runs.record import RecordSettings, record_cost, record_tasks
from sale_graph.bench.synthetic.generator import synthetic_records
from sale_graph.bench.tasks.schema import task_from_dict
from sale_graph.services import SaleServices
from tests.fakes import FakeFactory, pool_of, prompt_text
from tests.unit.bench.markets import BOTH, COST, ONLY_LARGE, A, B, record

LABELS = ["small", "large"]


@pytest.mark.parametrize(("answer", "expected"), [
    ("large", "large"),
    ("  Large.\n", "large"),
    ('"small"', "small"),
    ("I would route this to large, since it needs reasoning.", "large"),
    ('{"choice": "small"}', "small"),
    ('```json\n{"choice": "large", "confidence": 0.8}\n```', "large"),
    ('Sure: {"choice": "LARGE"}', "large"),
])
def test_parse_choice_accepts_a_named_agent(answer: str, expected: str) -> None:
    assert parse_choice(answer, LABELS) == (expected, "ok")


@pytest.mark.parametrize(("answer", "reason"), [
    ("", "empty answer"),
    ("gpt-4o", "names no pool agent"),
    ('{"choice": "medium"}', "'medium' is not a pool agent"),
    ("either small or large would do", "several pool agents"),
    ("smallish", "names no pool agent"),
])
def test_parse_choice_unknown_is_none_with_a_reason(answer: str, reason: str) -> None:
    choice, why = parse_choice(answer, LABELS)
    assert choice is None and reason in why


def test_criteria_and_prompt_mirror_the_choice_question(tmp_path) -> None:
    pool = pool_of(("small", 0.05), ("large", 0.36))
    crit = agent_criteria(pool.agents, {"large": "Good at multi-step reasoning."})
    assert crit["small"] == "Agent small, $0.05 per 1M output tokens."
    assert crit["large"].endswith("Good at multi-step reasoning.")
    prompt = classifier_prompt("What is 2+2?", crit)
    assert "What is 2+2?" in prompt and json.dumps(crit, indent=1) in prompt and '{"choice": "<label>"}' in prompt
    with pytest.raises(ValueError, match="not in the pool"):
        agent_criteria(pool.agents, {"medium": "x"})
    f = tmp_path / "criteria.json"
    f.write_text(json.dumps({"small": "Trivia."}))
    assert load_criteria(f) == {"small": "Trivia."} and load_criteria(None) == {}
    f.write_text("[1]")
    with pytest.raises(ValueError, match="JSON object"):
        load_criteria(f)


def _clf(choice: str | None, cost: float = 0.25, reason: str = "ok") -> dict[str, Any]:
    return {"agent": A, "raw": str(choice), "choice": choice, "reason": reason, "status": "ok", "input_tokens": 30,
            "output_tokens": 5, "cost_usd": cost, "seconds": 0.5}


def _market(with_classifier: bool = True) -> Market:
    recs = [record("t0", ONLY_LARGE, COST, {A: 0.5, B: 0.5}, split="test", plain=True),
            record("t1", BOTH, COST, {A: 0.5, B: 0.5}, split="test", plain=True),
            record("t2", ONLY_LARGE, COST, {A: 0.5, B: 0.5}, split="test", plain=True),
            record("t3", ONLY_LARGE, COST, {A: 0.5, B: 0.5}, split="test", plain=True)]
    if with_classifier:
        recs[0]["classifier"] = _clf(B)
        recs[1]["classifier"] = _clf(A)
        recs[2]["classifier"] = _clf(None, reason="answer names no pool agent: 'gpt-4o'")
        # t3: no classifier record at all (e.g. a task recorded before the classifier)
    return Market.from_records(recs)


def test_replay_picks_the_recorded_choice_and_charges_the_call() -> None:
    m = _market()
    idx = m.indices("test")
    router = ClassifierRouter()
    assert router.choose(m, idx).tolist() == [1, 0, 0, 0]  # t2, t3 fall back to the cheapest agent (small)
    out = evaluate(router, m, idx)
    assert out.passed.tolist() == [True, True, False, False]
    assert np.allclose(out.overhead_cost, [0.25, 0.25, 0.25, 0.0])
    assert np.allclose(out.cost, [2.25, 1.25, 1.25, 1.0])
    assert np.allclose(out.overhead_tokens, [35, 35, 35, 0])
    missing = fallback_tasks(m, idx)
    assert set(missing) == {"t2", "t3"} and "gpt-4o" in missing["t2"] and missing["t3"] == "no classifier record"
    assert "2 of 4 tasks had no usable choice and FELL BACK to the cheapest agent" in router.note(m, idx)


def test_a_choice_outside_the_pool_falls_back_visibly() -> None:
    m = _market()
    m.records[0]["classifier"]["choice"] = "medium"
    assert fallback_tasks(m, np.array([0]))["t0"] == "'medium' not in the pool"
    assert ClassifierRouter().route(m.records[0]) == A


def test_report_shows_the_router_and_its_fallbacks(tmp_path) -> None:
    m = _market()
    rep = build_report(m, text_routers=False, n_boot=50)
    assert "llm-classifier" in rep["outcomes"] and "llm-classifier" in rep["curves"]["aiq"]
    assert "FELL BACK" in rep["meta"]["classifier_note"]
    write_report(rep, tmp_path, figures=False)
    assert "llm-classifier" in json.loads((tmp_path / "results.json").read_text())
    assert "**LLM classifier**" in (tmp_path / "summary.md").read_text()


def test_old_logs_without_classifier_records_still_load() -> None:
    records, vectors = synthetic_records(40, seed=1)
    m = Market.from_records(records)
    store = EmbeddingStore()
    store.put(m.task_ids, m.texts, vectors)
    assert "llm-classifier" not in [r.name for r in standard_routers(m, m.indices("dev"), store=store)]
    rep = build_report(m, store=store, n_boot=50)
    assert "llm-classifier" not in rep["outcomes"] and "not available" in rep["meta"]["classifier_note"]
    m2 = _market(with_classifier=False)
    assert "llm-classifier" not in build_report(m2, text_routers=False, n_boot=20)["outcomes"]


TASKS = [task_from_dict({"id": f"q{k}", "domain": "search", "text": f"Capital of France? ({k})", "gold": ["Paris"],
                         "bin": 0, "bin_source": "proxy:x", "split": "test"}) for k in range(2)]
POOL = pool_of(("small", 0.05), ("large", 0.36))


def _jury(agent: str, messages) -> str:
    text = prompt_text(messages)
    if "Criteria (JSON" in text:  # the classifier's question
        return '{"choice": "large"}' if "(0)" in text else "no idea"
    return "SCORE: 4"


def _services() -> SaleServices:
    return SaleServices(model_factory=FakeFactory({"bid": lambda a, m: "1. look it up", "jury": _jury,
                                                   "execute": lambda a, m: "Final Answer: Paris"}), tools=[])


def test_recorder_logs_one_classifier_call_per_task(tmp_path) -> None:
    log = tmp_path / "log.jsonl"
    services = _services()
    settings = RecordSettings(classifier_criteria={"large": "Hard questions."})
    record_tasks(TASKS, POOL, str(log), settings, services=services, progress=False)
    recs = {r["task"]["id"]: r for r in read_log(log).records}
    c0, c1 = recs["q0"]["classifier"], recs["q1"]["classifier"]
    assert c0["agent"] == "small" and c0["choice"] == "large" and c0["raw"] == '{"choice": "large"}'
    assert c0["criteria"]["large"].endswith("Hard questions.") and c0["cost_usd"] > 0 and c0["input_tokens"] > 0
    assert c1["choice"] is None and "names no pool agent" in c1["reason"]
    assert record_cost(recs["q0"]) > record_cost({k: v for k, v in recs["q0"].items() if k != "classifier"})
    m = Market.from_log(log)
    out = evaluate(ClassifierRouter(), m, m.indices("test"))
    plain = evaluate(SingleAgentRouter("large"), m, m.indices("test"))
    assert out.cost[0] == pytest.approx(plain.cost[0] + c0["cost_usd"])


def test_recorder_classifier_agent_and_opt_out(tmp_path) -> None:
    log = tmp_path / "a.jsonl"
    record_tasks(TASKS[:1], POOL, str(log), RecordSettings(classifier_agent="large"), services=_services(), progress=False)
    assert read_log(log).records[0]["classifier"]["agent"] == "large"
    log2 = tmp_path / "b.jsonl"
    record_tasks(TASKS[:1], POOL, str(log2), RecordSettings(classifier=False), services=_services(), progress=False)
    assert "classifier" not in read_log(log2).records[0]
    with pytest.raises(ValueError, match="not in the pool"):
        record_tasks(TASKS[:1], POOL, str(tmp_path / "c.jsonl"), RecordSettings(classifier_agent="medium"),
                     services=_services(), progress=False)
