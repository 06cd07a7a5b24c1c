"""Clean runs on fake models: per-task inputs never leak, resumes check their context, a failed memory
write keeps the answer, a weights file must name every judge, the CLI's one-line errors, the answer extractor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from sale_graph import SaleContext, WeightsError, build_sale_graph
from sale_graph.errors import ResumeError
from sale_graph.executor.grading import extract_final_answer
from sale_graph.memory import MemoryStoreError
from tests.fakes import FakeFactory, pool_of, prompt_text

POOL = pool_of(("small", 0.05), ("large", 0.36))
AUSTRALIA = "What is the capital of Australia?"
FRANCE = "What is the capital of France?"


def strategies(agent: str, messages: list[BaseMessage]) -> str:
    return {"small": "1. search the capital 2. answer", "large": "1. search 2. verify with a second source 3. answer concisely"}[agent]


def judge(agent: str, messages: list[BaseMessage]) -> str:
    return "SCORE: 5" if "verify" in prompt_text(messages) else "SCORE: 2"


def executor(agent: str, messages: list[BaseMessage]) -> str:
    return "Final Answer: Paris" if "France" in prompt_text(messages) else "Final Answer: Canberra"


def factory(**overrides: Any) -> FakeFactory:
    return FakeFactory({"bid": strategies, "jury": judge, "execute": executor, **overrides})


def context(**settings: Any) -> SaleContext:
    return SaleContext(pool=POOL, **{"check_endpoints": False, "use_memory": False, **settings})


def thread(name: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}}


# --- per-task inputs on a thread --------------------------------------------------------------


def test_second_run_on_a_thread_does_not_inherit_gold_or_domain() -> None:
    graph = build_sale_graph(model_factory=factory(), tools=[]).compile(checkpointer=InMemorySaver())
    cfg = thread("stale-after-finish")
    first = graph.invoke({"task": AUSTRALIA, "gold": ["Canberra"], "domain": "search"}, cfg, context=context())
    assert first["execution"]["outcome"] == "passed"

    second = graph.invoke({"task": FRANCE}, cfg, context=context())
    values = graph.get_state(cfg).values
    assert values.get("gold") is None and values.get("domain") is None
    assert second["answer"] == "Paris"
    # Not graded against the first task's gold ("Paris" vs "Canberra" would be "failed").
    assert second["execution"]["outcome"] == "unknown"
    assert not any(n.startswith("dropped") for n in second["notes"])  # the first run finished: nothing was stale


def test_unfinished_run_leaves_stale_inputs_that_the_next_task_drops_with_a_note() -> None:
    def crashing_executor(agent: str, messages: list[BaseMessage]) -> Any:
        if "Australia" in prompt_text(messages):
            return RuntimeError("executor crashed")
        return executor(agent, messages)

    graph = build_sale_graph(model_factory=factory(execute=crashing_executor), tools=[]).compile(checkpointer=InMemorySaver())
    cfg = thread("stale-after-crash")
    with pytest.raises(RuntimeError, match="executor crashed"):
        graph.invoke({"task": AUSTRALIA, "gold": ["Canberra"], "domain": "search"}, cfg, context=context())
    assert graph.get_state(cfg).values["gold"] == ["Canberra"]  # the crash left them on the thread

    second = graph.invoke({"task": FRANCE}, cfg, context=context())
    assert any(n.startswith("dropped gold=['Canberra']") and "unfinished run" in n for n in second["notes"])
    assert any(n.startswith("dropped domain='search'") for n in second["notes"])
    assert second["answer"] == "Paris" and second["execution"]["outcome"] == "unknown"
    assert graph.get_state(cfg).values.get("gold") is None


# --- resuming after the approval pause --------------------------------------------------------


def test_resume_without_the_context_is_refused_then_the_right_resume_works() -> None:
    fake = factory()
    graph = build_sale_graph(model_factory=fake, tools=[]).compile(checkpointer=InMemorySaver())
    cfg = thread("approval")
    ctx = context(approve_before_execute=True)
    paused = graph.invoke({"task": AUSTRALIA}, cfg, context=ctx)
    assert paused["__interrupt__"][0].value["winner"] == "large"

    with pytest.raises(ResumeError) as info:
        graph.invoke(Command(resume={"winner": "small"}), cfg)  # no context: the default (embedded) pool
    message = str(info.value)
    assert "pool='test'" in message and "approve_before_execute=True" in message and "embedded pool" in message
    assert not any(phase == "execute" for _agent, phase in fake.calls)

    with pytest.raises(ResumeError, match="agents="):
        graph.invoke(Command(resume=True), cfg, context=SaleContext(pool=pool_of(("other", 0.1)), check_endpoints=False,
                                                                     use_memory=False, approve_before_execute=True))

    done = graph.invoke(Command(resume={"winner": "small"}), cfg, context=ctx)
    assert done["selection"]["winner"] == "small" and done["execution"]["agent"] == "small"
    assert done["answer"] == "Canberra"
    assert any("human overrode the winner: large -> small" in n for n in done["notes"])


# --- a memory that fails after the execution --------------------------------------------------


class MemoryDownAfterExecution:
    """Stores the bids at selection, then fails: the write with the execution's outcome raises."""

    def __init__(self) -> None:
        self.writes: list[dict[str, Any]] = []

    def record_auction(self, auction_id: str, task: str, domain: str, records: Any, *, outcome: str | None = None,
                       **kwargs: Any) -> list[str]:
        if outcome is not None:
            raise MemoryStoreError("chroma server at http://127.0.0.1:8000 is unreachable")
        self.writes.append({"auction_id": auction_id, "task": task, "records": list(records), **kwargs})
        return [f"{auction_id}:{i}" for i, _ in enumerate(records)]


def test_memory_failure_after_execution_keeps_the_answer_and_notes_it() -> None:
    memory = MemoryDownAfterExecution()
    fake = factory()
    graph = build_sale_graph(model_factory=fake, tools=[], memory=memory).compile()  # type: ignore[arg-type]
    out = graph.invoke({"task": AUSTRALIA, "gold": ["Canberra"]}, context=context(use_memory=True, refine=False))

    assert len(memory.writes) == 1  # the bids were stored at selection, before the execution
    assert out["answer"] == "Canberra" and out["execution"]["outcome"] == "passed"
    assert "chroma server" in out["memory_error"] and "MemoryStoreError" in out["memory_error"]
    assert any(n.startswith("MEMORY WRITE FAILED") and "the answer is returned" in n for n in out["notes"])


# --- weights that do not name every judge -----------------------------------------------------


def write_weights(path: Path, **extra: Any) -> str:
    path.write_text(json.dumps({"w_c": 0.01, "w_h": 0.5, "jury": {"small": 1.0}, **extra}), encoding="utf-8")
    return str(path)


def test_weights_file_missing_a_judge_fails_before_any_model_call(tmp_path: Path) -> None:
    fake = factory()
    graph = build_sale_graph(model_factory=fake, tools=[]).compile()
    weights = write_weights(tmp_path / "weights.json")
    with pytest.raises(WeightsError) as info:
        graph.invoke({"task": AUSTRALIA}, context=context(weights=weights))
    assert "large" in str(info.value) and "default_jury_weight" in str(info.value) and weights in str(info.value)
    assert fake.calls == []


def test_weights_file_with_a_default_jury_weight_runs(tmp_path: Path) -> None:
    weights = write_weights(tmp_path / "weights.json", default_jury_weight=0.25)
    out = build_sale_graph(model_factory=factory(), tools=[]).compile().invoke(
        {"task": AUSTRALIA}, context=context(weights=weights))
    rows = {r["agent"]: r for r in out["scores"]}
    # Judge small weighs 1.0 (named), judge large the default 0.25: V = 0.5 H + 1.0 gamma_small + 0.25 gamma_large.
    assert rows["large"]["value"] == pytest.approx(0.5 * rows["large"]["entropy"] + 1.0 * 1.0 + 0.25 * 1.0, abs=1e-6)
    assert rows["small"]["value"] == pytest.approx(0.5 * rows["small"]["entropy"] + 1.0 * 0.4 + 0.25 * 0.4, abs=1e-6)
    assert out["answer"] == "Canberra"


# --- the CLI: one line and exit code 2 --------------------------------------------------------


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from sale_graph.cli import main

    code = main(argv)
    return code, capsys.readouterr().err


def test_cli_bad_pool_file_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pool = tmp_path / "pool.toml"
    pool.write_text('[[agents]]\nname = "a"\nmodel = "m"\nbase_url = "http://127.0.0.1:9/v1"\nprice_input = 0.1\n', encoding="utf-8")
    code, err = cli(["run", "--pool", str(pool), "--no-memory", AUSTRALIA], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert "price_output" in err and str(pool) in err


def test_cli_weights_missing_an_agent_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import sale_graph.cli.commands
    import sale_graph.nodes.prepare
    import sale_graph.tools.defaults

    monkeypatch.setenv("SALE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sale_graph.cli.commands, "check_pool", lambda pool: [])  # no endpoint: the weights must fail first
    for module in (sale_graph.tools.defaults, sale_graph.nodes.prepare):  # no sandbox needed, wherever prepare finds it
        monkeypatch.setattr(module, "check_default_tools", lambda domain, search: None, raising=False)
    pool = tmp_path / "pool.toml"
    pool.write_text("".join(
        f'[[agents]]\nname = "{name}"\nmodel = "{name}"\nbase_url = "http://127.0.0.1:9/v1"\nprice_input = 0.1\nprice_output = 0.1\n'
        for name in ("small", "large")), encoding="utf-8")
    weights = write_weights(tmp_path / "weights.json")
    code, err = cli(["run", "--pool", str(pool), "--weights", weights, "--no-memory", AUSTRALIA], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert weights in err and "large" in err and "default_jury_weight" in err


# --- extract_final_answer edge cases (beyond tests/unit/test_grading.py) ----------------------

CODE = "```python\ndef add(a, b):\n    # Answer: the sum\n\n    return a + b\n```"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # The last Final Answer wins over an earlier one.
        ("Final Answer: Sydney\nWait, that is the largest city.\nFinal Answer: Canberra", "Canberra"),
        # Reasoning is ignored: a marker inside a closed or a cut-off think block does not count.
        ("<think>Final Answer: Sydney</think>\nFinal Answer: Canberra", "Canberra"),
        ("Final Answer: Canberra\n<think>or is it Final Answer: Sydney", "Canberra"),
        # Trailing explanation after the answer line is dropped.
        ("Final Answer: Canberra\nIt was chosen as a compromise between Sydney and Melbourne.", "Canberra"),
        ("**Final Answer:** Canberra.\n\nExplanation: purpose-built capital.", "Canberra"),
        # A fenced code block after the marker is returned whole (blank lines and an inner 'Answer:' kept).
        (f"Final Answer:\n{CODE}\nThis adds two numbers.", CODE),
        (f"Here is my plan.\nFinal Answer: {CODE}", CODE),
    ],
)
def test_extract_final_answer_edge_cases(message: str, expected: str) -> None:
    assert extract_final_answer(message) == expected



@pytest.mark.parametrize("message", ["Final Answer: *Canberra*.", "**Final Answer:** **Canberra**.", "Final Answer: `Canberra`."])
def test_extract_final_answer_strips_emphasis_before_a_final_period(message: str) -> None:
    # Emphasis inside a trailing period: stripped in any nesting order (was 'Canberra*' before _clean repeated its steps).
    assert extract_final_answer(message) == "Canberra"
