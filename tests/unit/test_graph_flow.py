"""The auction graph end to end on fake models: node order, table, winner, ledger."""

from __future__ import annotations

import re

import pytest
from langchain_core.messages import AIMessage

from sale_graph import SaleContext, build_sale_graph
from tests.fakes import FakeFactory, pool_of, prompt_text

POOL = pool_of(("small", 0.05), ("large", 0.36))


def strategies(agent: str, messages) -> str:
    return {"small": "1. search the capital 2. answer", "large": "1. search 2. verify with a second source 3. answer concisely"}[agent]


def fair_judge(agent: str, messages) -> str:
    text = prompt_text(messages)
    return "SCORE: 5" if "verify" in text else "SCORE: 2"


def executor(agent: str, messages) -> str:
    return "Final Answer: Canberra"


def run(factory: FakeFactory, **ctx) -> dict:
    graph = build_sale_graph(model_factory=factory, tools=[]).compile()
    context = SaleContext(pool=POOL, check_endpoints=False, use_memory=False, **ctx)
    return graph.invoke({"task": "What is the capital of Australia?"}, context=context)


def test_node_order_and_winner() -> None:
    factory = FakeFactory({"bid": strategies, "jury": fair_judge, "execute": executor})
    graph = build_sale_graph(model_factory=factory, tools=[]).compile()
    context = SaleContext(pool=POOL, check_endpoints=False, use_memory=False)
    order = []
    for chunk in graph.stream({"task": "What is the capital of Australia?"}, context=context, stream_mode="updates"):
        order.extend(chunk.keys())
    assert order == ["prepare", "bid", "bid", "score", "jury", "jury", "jury", "jury", "select", "approve", "execute", "remember"]


def test_table_values_by_hand() -> None:
    factory = FakeFactory({"bid": strategies, "jury": fair_judge, "execute": executor})
    out = run(factory)
    rows = {r["agent"]: r for r in out["scores"]}
    # Fake usage: output tokens = word count. small: 6 words, large: 11 words.
    assert rows["small"]["tokens"] == 6 and rows["large"]["tokens"] == 11
    # Default w_c scaled to the pool: a 130-token bid by the dearest agent (large, $0.36) costs 20% of the value range 1.5.
    w_c = 0.2 * 1.5 / (0.36 * 130)
    assert out["run_context"]["fingerprint"]["w_c"] == pytest.approx(w_c)
    assert out["run_context"]["fingerprint"]["cost_rule"].startswith("pool-scaled")
    assert rows["small"]["cost"] == pytest.approx(w_c * 0.05 * 6, abs=1e-6)
    assert rows["large"]["cost"] == pytest.approx(w_c * 0.36 * 11, abs=1e-6)
    # Jury: both judges give large 5/5 and small 2/5; uniform jury weights 1/2 each.
    assert rows["large"]["jury"] == {"small": 1.0, "large": 1.0}
    assert rows["small"]["jury"] == {"small": 0.4, "large": 0.4}
    h_small = rows["small"]["entropy"]
    assert rows["small"]["entropy_source"] == "text"  # fakes send no log-probs
    assert rows["small"]["value"] == pytest.approx(0.5 * h_small + 0.4, abs=1e-6)
    assert rows["large"]["net"] == pytest.approx(rows["large"]["cost"] - rows["large"]["value"], abs=1e-6)
    assert out["selection"]["winner"] == "large"
    assert out["selection"]["runner_up"] == "small"
    assert out["selection"]["margin"] == pytest.approx(rows["small"]["net"] - rows["large"]["net"], abs=2e-6)  # rows are rounded to 1e-6
    assert out["answer"] == "Canberra"


def test_ledger_by_phase_and_agent() -> None:
    factory = FakeFactory({"bid": strategies, "jury": fair_judge, "execute": executor})
    out = run(factory)
    phases = sorted({(e["phase"], e["agent"]) for e in out["ledger"]})
    assert phases == [("bid", "large"), ("bid", "small"), ("execute", "large"), ("jury", "large"), ("jury", "small")]
    assert len([e for e in out["ledger"] if e["phase"] == "jury"]) == 4
    for e in out["ledger"]:
        price = 0.05 if e["agent"] == "small" else 0.36
        assert e["cost_usd"] == pytest.approx((e["input_tokens"] + e["output_tokens"]) * price / 1e6)
    assert len(factory.calls) == 2 + 4 + 1


def test_missing_judge_is_renormalised_not_zero() -> None:
    def flaky_judge(agent: str, messages) -> str:
        if agent == "small":
            return "I think this plan is fine, 10 out of ten!"  # unparseable -> missing
        return fair_judge(agent, messages)

    # One of two judges is 50%, below the default quorum (more than half): lower it to see the renormalisation.
    out = run(FakeFactory({"bid": strategies, "jury": flaky_judge, "execute": executor}), jury_quorum=0.4)
    rows = {r["agent"]: r for r in out["scores"]}
    assert rows["small"]["jury"]["small"] is None
    assert rows["small"]["missing_judges"] == ["small"]
    # The one answering judge carries the whole jury weight: 0.4, not 0.4/2.
    assert rows["small"]["value"] == pytest.approx(0.5 * rows["small"]["entropy"] + 0.4, abs=1e-6)
    assert "renormalised over 1/2" in rows["small"]["note"]
    missing = [v for v in out["votes"] if v["status"] == "missing"]
    assert len(missing) == 2 and all(v["reason"] for v in missing)


def test_failed_bid_is_recorded_and_auction_goes_on() -> None:
    import httpx

    def bids(agent: str, messages):
        if agent == "large":
            return httpx.ConnectError("connection refused")
        return strategies(agent, messages)

    out = run(FakeFactory({"bid": bids, "jury": fair_judge, "execute": executor}))
    failed = [b for b in out["bids"] if b["status"] == "error"]
    assert failed and failed[0]["agent"] == "large" and "ConnectError" in failed[0]["error"]
    assert out["selection"]["winner"] == "small"
    assert any("bid of large failed" in n for n in out["notes"])


def test_all_bids_failing_is_a_clear_error() -> None:
    import httpx

    from sale_graph.errors import AuctionError

    factory = FakeFactory({"bid": lambda a, m: httpx.ConnectError("refused"), "jury": fair_judge, "execute": executor})
    with pytest.raises(AuctionError, match="no agent produced a bid"):
        run(factory)


def test_empty_task_is_rejected() -> None:
    from sale_graph.errors import TaskError

    graph = build_sale_graph(model_factory=FakeFactory({}), tools=[]).compile()
    with pytest.raises(TaskError, match="no text"):
        graph.invoke({"task": "   "}, context=SaleContext(pool=POOL, check_endpoints=False))


def test_fan_out_runs_in_parallel() -> None:
    import time

    factory = FakeFactory({"bid": strategies, "jury": fair_judge, "execute": executor}, delay_s=0.2)
    start = time.perf_counter()
    run(factory, max_concurrency=8)
    parallel = time.perf_counter() - start
    # 2 bids + 4 jury + 1 execute at 0.2 s each: 1.4 s one by one, ~0.6 s in parallel.
    assert parallel < 1.1, parallel


def test_concurrency_bound_holds() -> None:
    import threading
    import time

    live = []
    peak = [0]
    lock = threading.Lock()

    def slow_judge(agent: str, messages) -> str:
        with lock:
            live.append(1)
            peak[0] = max(peak[0], len(live))
        time.sleep(0.05)
        with lock:
            live.pop()
        return "SCORE: 3"

    run(FakeFactory({"bid": strategies, "jury": slow_judge, "execute": executor}), max_concurrency=1)
    assert peak[0] == 1


def test_rerun_on_same_thread_starts_fresh_auction() -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    factory = FakeFactory({"bid": strategies, "jury": fair_judge, "execute": executor})
    graph = build_sale_graph(model_factory=factory, tools=[]).compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "t1"}}
    context = SaleContext(pool=POOL, check_endpoints=False, use_memory=False)
    first = graph.invoke({"task": "What is the capital of Australia?"}, cfg, context=context)
    second = graph.invoke({"task": "What is the capital of France?"}, cfg, context=context)
    assert first["auction_id"] != second["auction_id"]
    assert len(second["bids"]) == 2 and len(second["votes"]) == 4
    assert re.search("France", second["task"])


def test_human_override_before_execute() -> None:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command

    factory = FakeFactory({"bid": strategies, "jury": fair_judge, "execute": executor})
    graph = build_sale_graph(model_factory=factory, tools=[]).compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "approval"}}
    context = SaleContext(pool=POOL, check_endpoints=False, use_memory=False, approve_before_execute=True)
    paused = graph.invoke({"task": "What is the capital of Australia?"}, cfg, context=context)
    assert "__interrupt__" in paused and paused["__interrupt__"][0].value["winner"] == "large"
    assert not any(phase == "execute" for _, phase in factory.calls)
    done = graph.invoke(Command(resume={"winner": "small"}), cfg, context=context)
    assert done["selection"]["winner"] == "small" and "human override" in done["selection"]["reason"]
    assert done["execution"]["agent"] == "small"


def _with_logprobs(text: str) -> AIMessage:
    import math

    # Every token: top-2 alternatives at 0.5 / 0.5 -> normalised entropy log2/log3.
    content = [
        {
            "token": w,
            "logprob": math.log(0.5),
            "top_logprobs": [{"token": w, "logprob": math.log(0.5)}, {"token": "x", "logprob": math.log(0.5)}],
        }
        for w in text.split()
    ]
    n = len(text.split())
    return AIMessage(content=text, response_metadata={"logprobs": {"content": content}},
                     usage_metadata={"input_tokens": 5, "output_tokens": n, "total_tokens": 5 + n})


def test_entropy_from_logprobs_when_every_bid_has_them() -> None:
    import math

    factory = FakeFactory({"bid": lambda a, m: _with_logprobs(strategies(a, m)), "jury": fair_judge, "execute": executor})
    out = run(factory)
    for row in out["scores"]:
        assert row["entropy_source"] == "logprobs"
        assert row["entropy"] == pytest.approx(math.log(2) / math.log(3), abs=1e-6)


def test_mixed_entropy_sources_keep_logprobs_and_rescale_text() -> None:
    import math

    from sale_graph.scoring import text_entropy

    def bids(agent: str, messages):
        return _with_logprobs(strategies(agent, messages)) if agent == "small" else strategies(agent, messages)

    out = run(FakeFactory({"bid": bids, "jury": fair_judge, "execute": executor}))
    by_agent = {b["agent"]: b for b in out["bids"]}
    assert by_agent["small"]["entropy_source"] == "logprobs"  # the bid keeps what the endpoint gave
    rows = {r["agent"]: r for r in out["scores"]}
    # The log-prob bid keeps its own entropy; the text-only bid is put on the log-prob scale by the
    # ratio measured on the bid that has both (small): H_lp(small) / H_text(small).
    h_lp = math.log(2) / math.log(3)
    assert rows["small"]["entropy_source"] == "logprobs" and rows["small"]["entropy"] == pytest.approx(h_lp, abs=1e-6)
    scale = h_lp / text_entropy(by_agent["small"]["strategy"])
    expected = min(1.0, text_entropy(by_agent["large"]["strategy"]) * scale)
    assert rows["large"]["entropy_source"] == "text-rescaled"
    assert rows["large"]["entropy"] == pytest.approx(expected, abs=1e-6)
    assert "mixed sources" in rows["large"]["note"]
    assert out["entropy_policy"].startswith("mixed:") and "large" in out["entropy_policy"]


def test_request_id_sets_auction_id_once() -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    factory = FakeFactory({"bid": strategies, "jury": fair_judge, "execute": executor})
    graph = build_sale_graph(model_factory=factory, tools=[]).compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "rid"}}
    context = SaleContext(pool=POOL, check_endpoints=False, use_memory=False)
    first = graph.invoke({"task": "What is the capital of Australia?", "request_id": "my-id-1"}, cfg, context=context)
    second = graph.invoke({"task": "What is the capital of Australia?"}, cfg, context=context)
    assert first["auction_id"] == "my-id-1"
    assert second["auction_id"] not in ("my-id-1", "")
