"""Limits, async nodes and the batched jury on fake models: many auctions at once behave."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import time
from typing import Any

import httpx
import pytest

from sale_graph import SaleContext, build_sale_graph
from sale_graph.llm.limits import Limiter, endpoint_limiter
from sale_graph.pool import AgentPool
from tests.fakes import FakeFactory, pool_of, prompt_text

POOL = pool_of(("small", 0.05), ("mid", 0.09), ("large", 0.36))
TASK = {"task": "What is the capital of Australia?"}


def strategies(agent: str, messages: Any) -> str:
    return {
        "small": "1. guess the answer",
        "mid": "1. search 2. answer",
        "large": "1. search 2. verify with a second source 3. answer",
    }[agent]


def judge(agent: str, messages: Any) -> str:
    text = prompt_text(messages)
    plans = re.findall(r"Plan ([A-Z]): <strategy-\w+>(.*?)</strategy", text)
    if plans:  # a batched prompt: one line per plan
        return "\n".join(f"{label}: {5 if 'verify' in plan else 2}" for label, plan in plans)
    return "SCORE: 5" if "verify" in text.split("Task:")[-1] else "SCORE: 2"


def executor(agent: str, messages: Any) -> str:
    return "Final Answer: Canberra"


def context(**kw: Any) -> SaleContext:
    return SaleContext(pool=kw.pop("pool", POOL), check_endpoints=False, use_memory=False, **kw)


def test_limiter_bounds_threads_and_tasks_together() -> None:
    limiter = Limiter(2)
    inside = 0
    peak = 0
    lock = threading.Lock()

    def enter() -> None:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)

    def leave() -> None:
        nonlocal inside
        with lock:
            inside -= 1

    def worker() -> None:
        with limiter.hold():
            enter()
            time.sleep(0.02)
            leave()

    async def aworker() -> None:
        async with limiter.ahold():
            enter()
            await asyncio.sleep(0.02)
            leave()

    async def main() -> None:
        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        await asyncio.gather(*(aworker() for _ in range(6)))
        for t in threads:
            await asyncio.to_thread(t.join)

    asyncio.run(main())
    assert peak == 2 and limiter.peak == 2 and limiter.in_use == 0


def test_unbounded_limiter_never_waits() -> None:
    limiter = Limiter(0)
    for _ in range(50):
        limiter.acquire()
    assert limiter.in_use == 50


def test_per_endpoint_limit_holds_across_concurrent_runs() -> None:
    # Each agent's endpoint takes one call at a time; six runs at once never exceed it.
    agents = tuple(dataclasses.replace(a, base_url=f"http://127.0.0.1:9/{a.name}-limit/v1", max_concurrency=1) for a in POOL.agents)
    pool = AgentPool(agents, source="limited")
    in_flight: dict[str, int] = dict.fromkeys(pool.names, 0)
    peak: dict[str, int] = dict.fromkeys(pool.names, 0)
    lock = threading.Lock()

    def tracked(inner: Any) -> Any:
        def respond(agent: str, messages: Any) -> Any:
            with lock:
                in_flight[agent] += 1
                peak[agent] = max(peak[agent], in_flight[agent])
            time.sleep(0.005)
            with lock:
                in_flight[agent] -= 1
            return inner(agent, messages)

        return respond

    factory = FakeFactory({"bid": tracked(strategies), "jury": tracked(judge), "execute": tracked(executor)})
    graph = build_sale_graph(model_factory=factory, tools=[]).compile()
    threads = [threading.Thread(target=graph.invoke, args=(TASK,), kwargs={"context": context(pool=pool, max_concurrency=8)})
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(peak.values()) == 1
    assert all(endpoint_limiter(a).peak == 1 for a in agents)


def test_per_run_bound_limits_one_auction() -> None:
    factory = FakeFactory({"bid": strategies, "jury": judge, "execute": executor}, delay_s=0.01)
    graph = build_sale_graph(model_factory=factory, tools=[]).compile()
    out = graph.invoke(TASK, context=context(max_concurrency=1))
    assert out["selection"]["winner"] == "large"
    # The run's limiter saw at most one call at a time.
    from sale_graph.llm.limits import run_limiter

    assert run_limiter(out["auction_id"], 1).peak == 1


PAST_TASK = "What is the capital city of Australia?"
REFINED = "1. search two sources 2. verify with a second source that they agree 3. answer"


def _unavailable(agent: str, phase: str) -> httpx.HTTPStatusError:
    """A retryable failure (HTTP 503) asking for no wait, so the retry line is the same on every run."""
    request = httpx.Request("POST", f"http://127.0.0.1:9/{agent}/v1/chat/completions")
    response = httpx.Response(503, headers={"retry-after-ms": "0"}, request=request)
    return httpx.HTTPStatusError(f"{agent} {phase}: server overloaded", request=request, response=response)


def _refused(agent: str) -> httpx.HTTPStatusError:
    """A failure that is never retried (HTTP 400): the bid is recorded as failed."""
    request = httpx.Request("POST", f"http://127.0.0.1:9/{agent}/v1/chat/completions")
    return httpx.HTTPStatusError(f"{agent}: prompt too long", request=request, response=httpx.Response(400, request=request))


def _eventful_factory() -> FakeFactory:
    """Bids, votes, a refinement and an execution with retried calls, a failed bid and a missing vote."""
    attempts: dict[tuple[str, str], int] = {}
    lock = threading.Lock()

    def first_attempt_fails(key: tuple[str, str]) -> bool:
        with lock:
            attempts[key] = attempts.get(key, 0) + 1
            return attempts[key] == 1

    def bid(agent: str, messages: Any) -> Any:
        if agent == "mid":
            return _refused(agent)  # a failed bid
        if agent == "large" and first_attempt_fails((agent, "bid")):
            return _unavailable(agent, "bid")  # retried, then answered
        return strategies(agent, messages)

    def vote(agent: str, messages: Any) -> Any:
        text = prompt_text(messages).split("Task:")[-1]
        if agent == "mid" and "guess" in text:
            return "I would rather not say."  # a missing vote (the bid keeps its quorum: 2 of 3 judges)
        if agent == "small" and "verify" in text and first_attempt_fails((agent, "jury:" + text[-40:])):
            return _unavailable(agent, "jury")
        return judge(agent, messages)

    def execute(agent: str, messages: Any) -> Any:
        if first_attempt_fails((agent, "execute")):
            return _unavailable(agent, "execute")
        return "Final Answer: Canberra"

    return FakeFactory({"bid": bid, "jury": vote, "refine": lambda a, m: REFINED, "execute": execute})


def _seeded_memory(path: Any) -> Any:
    from sale_graph.memory import AuctionMemory, StrategyRecord

    memory = AuctionMemory(path=path)
    memory.record_auction("past-1", PAST_TASK, "search", [
        StrategyRecord(agent="small", strategy=REFINED, cost=0.01, entropy=0.9, value=1.2, won=True, timestamp=1.0),
        StrategyRecord(agent="large", strategy="guess the answer", cost=0.2, entropy=0.5, value=0.4, timestamp=1.0),
    ], outcome="passed")
    return memory


def _without_timings(value: Any) -> Any:
    """``value`` with every wall-clock field left out (``seconds``, ``timestamp``): all else must match."""
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in ("seconds", "timestamp")}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _whole_record(out: dict[str, Any], memory: Any) -> dict[str, Any]:
    """The whole auction record, in an order that does not depend on which parallel branch finished first."""
    record = _without_timings(dict(out))
    for key, order in (("bids", ("agent", "round")), ("votes", ("judge", "bidder", "round")), ("scores", ("agent", "round")),
                       ("ledger", ("phase", "agent", "input_tokens", "output_tokens"))):
        record[key] = sorted(record[key], key=lambda item, order=order: tuple(str(item[k]) for k in order))
    record["notes"] = sorted(record["notes"])
    record["messages"] = [(m.type, m.content, m.name) for m in out.get("messages", [])]  # ids are random
    stored = memory.get_auction(out["auction_id"])
    record["memory"] = [_without_timings(b.to_dict()) for b in stored]
    record["memory_stats"] = memory.stats() | {"location": ""}
    return record


def test_async_and_sync_give_the_same_auction(tmp_path: Any) -> None:
    """The whole record, with memory, refinement, retries and failures on, is the same under invoke and ainvoke."""
    records = []
    for mode in ("sync", "async"):
        memory = _seeded_memory(tmp_path / mode)
        graph = build_sale_graph(model_factory=_eventful_factory(), memory=memory, tools=[]).compile()
        inputs = {"task": TASK["task"], "domain": "search", "gold": ["Canberra"], "request_id": "parity-1"}
        ctx = SaleContext(pool=POOL, check_endpoints=False)
        out = graph.invoke(inputs, context=ctx) if mode == "sync" else asyncio.run(graph.ainvoke(inputs, context=ctx))
        records.append(_whole_record(out, memory))
    sync, async_ = records
    # The run had every kind of event the comparison is about.
    assert sync["refinement"]["status"] == "done" and any(b["round"] == "refined" for b in sync["bids"])
    assert any(b["status"] == "error" for b in sync["bids"]) and any(v["status"] == "missing" for v in sync["votes"])
    assert any(b.get("retries") for b in sync["bids"]) and any(v.get("retries") for v in sync["votes"])
    assert sync["execution"].get("retries") and sync["execution"]["outcome"] == "passed"
    assert len(sync["memory"]) == 3 and sync["memory_stats"]["auctions"] == 2
    assert set(sync) == set(async_)
    for key in sorted(sync):
        assert sync[key] == async_[key], key


def test_async_run_never_blocks_the_event_loop() -> None:
    blockbuster = pytest.importorskip("blockbuster")
    factory = FakeFactory({"bid": strategies, "jury": judge, "execute": executor})
    graph = build_sale_graph(model_factory=factory, tools=[]).compile()

    async def main() -> dict[str, Any]:
        with blockbuster.blockbuster_ctx():  # raises BlockingError on a blocking call made on the loop
            return await graph.ainvoke(TASK, context=context())

    out = asyncio.run(main())
    assert out["answer"] == "Canberra"


def test_batched_jury_makes_one_call_per_judge_and_agrees() -> None:
    per_bid = FakeFactory({"bid": strategies, "jury": judge, "execute": executor})
    batched = FakeFactory({"bid": strategies, "jury": judge, "execute": executor})
    a = build_sale_graph(model_factory=per_bid, tools=[]).compile().invoke(TASK, context=context())
    b = build_sale_graph(model_factory=batched, tools=[]).compile().invoke(TASK, context=context(jury_mode="batched"))
    assert sum(1 for _, phase in per_bid.calls if phase == "jury") == 9
    assert sum(1 for _, phase in batched.calls if phase == "jury") == 3
    assert sorted((v["judge"], v["bidder"], v["likert"]) for v in a["votes"]) == sorted(
        (v["judge"], v["bidder"], v["likert"]) for v in b["votes"])
    assert a["selection"]["winner"] == b["selection"]["winner"] == "large"


def test_batched_jury_renormalises_missing_scores_like_per_bid() -> None:
    def forgetful(agent: str, messages: Any) -> str:
        answer = judge(agent, messages)
        if agent != "small":
            return answer
        # The small judge leaves out the plan that mentions "verify" (batched) / answers nonsense (per bid).
        text = prompt_text(messages)
        plans = dict(re.findall(r"Plan ([A-Z]): <strategy-\w+>(.*?)</strategy", text))
        if plans:
            return "\n".join(line for line in answer.splitlines() if "verify" not in plans[line.split(":")[0]])
        return "no idea" if "verify" in text.split("Task:")[-1] else answer

    outs = []
    for mode in ("per_bid", "batched"):
        factory = FakeFactory({"bid": strategies, "jury": forgetful, "execute": executor})
        outs.append(build_sale_graph(model_factory=factory, tools=[]).compile().invoke(TASK, context=context(jury_mode=mode)))
    rows = [{r["agent"]: r for r in out["scores"]} for out in outs]
    for r in rows:
        assert r["large"]["missing_judges"] == ["small"]
        assert "renormalised over 2/3" in r["large"]["note"]
    assert rows[0]["large"]["value"] == pytest.approx(rows[1]["large"]["value"])


def test_batched_order_is_shuffled_per_judge_and_reproducible() -> None:
    from sale_graph.nodes.jury_batch import BatchBid, JuryBatchTask, shuffled

    bids = [BatchBid(bidder=f"agent{i}", round="original", strategy=f"plan {i}") for i in range(6)]
    orders = {j: [b["bidder"] for _, b in shuffled(JuryBatchTask(auction_id="a1", judge=j, task="t", bids=bids))]
              for j in ("j1", "j2", "j3")}
    assert len({tuple(o) for o in orders.values()}) > 1  # judges see different orders
    again = [b["bidder"] for _, b in shuffled(JuryBatchTask(auction_id="a1", judge="j1", task="t", bids=bids))]
    assert again == orders["j1"]


@pytest.mark.parametrize("memory_from", ["object", "memory_dir"])
def test_async_run_with_pool_and_weights_files_memory_and_refinement_never_blocks_the_loop(tmp_path: Any,
                                                                                           memory_from: str) -> None:
    """A pool or weights given as a path was stat'ed on the loop at every resolution (issue 20, finding 9)."""
    blockbuster = pytest.importorskip("blockbuster")
    from sale_graph.memory import AuctionMemory, StrategyRecord

    pool = tmp_path / "pool.toml"
    pool.write_text("".join(
        f'[[agents]]\nname = "{name}"\nmodel = "{name}"\nbase_url = "http://127.0.0.1:9/v1"\n'
        f"price_input = {price}\nprice_output = {price}\n" for name, price in (("small", 0.05), ("large", 0.36))),
        encoding="utf-8")
    weights = tmp_path / "weights.json"
    weights.write_text('{"w_c": 0.01, "w_h": 0.5, "jury": {"small": 1.0, "large": 1.0}}', encoding="utf-8")
    memory = AuctionMemory(path=tmp_path / "memory")
    strong, weak = "1. search two sources 2. verify they agree 3. answer", "guess the answer from memory"
    memory.record_auction("past-1", "What is the capital city of Australia?", "search", [
        StrategyRecord(agent="small", strategy=strong, cost=0.01, entropy=0.9, value=1.2, won=True),
        StrategyRecord(agent="large", strategy=weak, cost=0.2, entropy=0.5, value=0.4, won=False),
    ], outcome="passed")
    factory = FakeFactory({
        "bid": lambda a, m: weak if a == "small" else "1. search the web 2. verify with a second source 3. answer",
        "jury": lambda a, m: "SCORE: 5" if "verify" in prompt_text(m).split("Task:")[-1] else "SCORE: 1",
        "refine": lambda a, m: strong, "execute": executor,
    })
    if memory_from == "memory_dir":  # the run opens the memory the context names
        del memory
        graph = build_sale_graph(model_factory=factory, tools=[]).compile()
        ctx = SaleContext(pool=str(pool), weights=str(weights), check_endpoints=False, memory_dir=str(tmp_path / "memory"))
    else:
        graph = build_sale_graph(model_factory=factory, memory=memory, tools=[]).compile()
        ctx = SaleContext(pool=str(pool), weights=str(weights), check_endpoints=False)

    async def main() -> dict[str, Any]:
        with blockbuster.blockbuster_ctx():
            return await graph.ainvoke({**TASK, "domain": "search"}, context=ctx)

    out = asyncio.run(main())
    assert out["refinement"]["status"] == "done" and ("small", "refine") in factory.calls
    assert out["answer"] == "Canberra"
