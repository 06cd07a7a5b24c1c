"""Limits, async nodes and the batched jury on fake models: many auctions at once behave."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import time
from typing import Any

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


def _comparable(out: dict[str, Any]) -> dict[str, Any]:
    return {
        "winner": out["selection"]["winner"],
        "bids": sorted((b["agent"], b["strategy"], b["tokens"]) for b in out["bids"]),
        "votes": sorted((v["judge"], v["bidder"], v["likert"]) for v in out["votes"]),
        "ledger": sorted((e["phase"], e["agent"], e["input_tokens"], e["output_tokens"]) for e in out["ledger"]),
        "answer": out["answer"],
    }


def test_async_and_sync_give_the_same_auction() -> None:
    factory = FakeFactory({"bid": strategies, "jury": judge, "execute": executor})
    graph = build_sale_graph(model_factory=factory, tools=[]).compile()
    sync = graph.invoke(TASK, context=context())
    async_ = asyncio.run(graph.ainvoke(TASK, context=context()))
    assert _comparable(sync) == _comparable(async_)


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
