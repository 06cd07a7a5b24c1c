"""Many auctions at once, side by side in one run.

1. One auction vs 20 concurrent ones (threads and asyncio) against an OpenAI-compatible
   loopback endpoint that answers every call after a fixed latency (the contract tests'
   wire server), with per-endpoint limits that allow it. Target: 20 concurrent within 2x
   the wall time of one.
2. SALE vs a bare LangGraph graph of the same shape (the same Sends, the same model
   calls on instant fake models, no accounting). Target: at most 1.3x.
3. With ``--embedded``: per-bid vs batched jury on the embedded pool (calls, tokens and
   wall time per auction), and the fan-out ratio auction wall time / (slowest bid +
   slowest jury round), which is 1.0 when every call of a round overlaps.

    python -m benchmarks.throughput [--latency 0.2] [--runs 20] [--repeat 3] [--server-process] [--style vllm_reasoning]
                                    [--embedded --tasks 4]
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import statistics
import threading
import time
from typing import Annotated, Any, NamedTuple

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from typing_extensions import TypedDict

from benchmarks.client_cpu import STYLES, start_server
from sale_graph import AgentPool, AgentSpec, SaleContext, SaleInput, build_sale_graph
from sale_graph.prompts import bid_messages, execute_system_prompt, jury_messages
from tests.contract.wire_formats import ModelBehaviour
from tests.contract.wire_server import WireServer
from tests.fakes import FakeFactory, pool_of

TASK: SaleInput = {"task": "What is the capital of Australia?"}
NAMES = ("small", "medium", "large")


def _latency_pool(base_url: str, limit: int) -> AgentPool:
    agents = tuple(
        AgentSpec(name=n, model=n, base_url=base_url, price_input=p, price_output=p, max_concurrency=limit,
                  structured_output="json_schema", logprobs=False)
        for n, p in zip(NAMES, (0.05, 0.16, 0.36), strict=True)
    )
    return AgentPool(agents, source="latency endpoint")


def _context(pool: AgentPool, **kw: Any) -> SaleContext:
    return SaleContext(pool=pool, use_memory=False, check_endpoints=False, **kw)


class Batches(NamedTuple):
    """Wall seconds of one auction and of each way of running ``runs`` at once (one entry per repeat)."""

    one: list[float]
    threads: list[float]
    asyncio_warm: list[float]
    asyncio_new_loop: list[float]


def concurrent_auctions(latency: float, runs: int, server_process: bool = False, repeat: int = 3, style: str = "openai") -> None:
    """One auction vs ``runs`` at once, threads and asyncio, on a fixed-latency endpoint.

    The endpoint runs in this process (its threads share the GIL with the client's), or with
    ``server_process`` in its own, as a real endpoint does. ``style`` is how its models
    answer: plainly, or thinking first (vLLM's separated reasoning, Qwen3's inline ``<think>``).
    """
    if server_process:
        proc, base_url = start_server(latency, style)
        try:
            batches = _time_runs(_latency_pool(base_url, limit=64), runs, repeat)
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=10)
        peak = None
    else:
        behaviour = ModelBehaviour(latency_s=latency, style=style, server_kind="openai" if style == "openai" else "vllm")  # type: ignore[arg-type]  # checked by argparse
        with WireServer(dict.fromkeys(NAMES, behaviour)) as server:
            batches = _time_runs(_latency_pool(server.base_url, limit=64), runs, repeat)
            peak = max(server.max_in_flight(n) for n in NAMES)
    calls = 3 + 9 + 1
    where = "in its own process" if server_process else "in this process, sharing its GIL"
    where += "" if style == "openai" else f", {style} answers"
    one = statistics.median(batches.one)
    print(f"1. fixed-latency endpoint {where} ({latency * 1000:.0f} ms a call, {calls} calls an auction, per-endpoint limit 64);"
          f" median of {repeat} (range), each mode warmed by one auction")
    print(f"   one auction                          {one:7.2f} s")
    for label, walls in (("threads", batches.threads), ("asyncio", batches.asyncio_warm),
                         ("asyncio, a new loop", batches.asyncio_new_loop)):
        ratios = [w / o for w, o in zip(walls, batches.one, strict=True)]
        wall = statistics.median(walls)
        print(f"   {runs} concurrent ({label + ')':<20} {wall:7.2f} s   x{statistics.median(ratios):.2f} of one "
              f"(x{min(ratios):.2f}-{max(ratios):.2f})   {runs / wall:5.1f} auctions/s")
    if peak is not None:
        print(f"   most calls in flight to one model: {peak}")


def _time_runs(pool: AgentPool, runs: int, repeat: int) -> Batches:
    """One auction, then ``runs`` at once in threads, on a warmed event loop and on a new one, ``repeat`` times.

    Each mode starts from one auction on the same clients (the threads' pool, the loop's
    own), so both have opened the connections one auction needs and open the rest during
    the batch. The new loop's batch opens every connection (and its clients) as it goes,
    as the first requests of a fresh ``asyncio.run`` do.
    """
    graph = build_sale_graph(tools=[]).compile()
    graph.invoke(TASK, context=_context(pool))  # warm-up: imports, connections
    out = Batches([], [], [], [])

    async def one_then_many(warm: bool) -> float:
        if warm:
            await graph.ainvoke(TASK, context=_context(pool))
        t0 = time.perf_counter()
        await asyncio.gather(*(graph.ainvoke(TASK, context=_context(pool)) for _ in range(runs)))
        return time.perf_counter() - t0

    for _ in range(repeat):
        t0 = time.perf_counter()
        graph.invoke(TASK, context=_context(pool))
        out.one.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=graph.invoke, args=(TASK,), kwargs={"context": _context(pool)}) for _ in range(runs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out.threads.append(time.perf_counter() - t0)
        out.asyncio_warm.append(asyncio.run(one_then_many(warm=True)))
        out.asyncio_new_loop.append(asyncio.run(one_then_many(warm=False)))
    return out


class _Bare(TypedDict, total=False):
    task: str
    agents: list[str]
    bids: Annotated[list[str], operator.add]
    votes: Annotated[list[str], operator.add]
    answer: str


def _bare_graph(factory: FakeFactory, pool: AgentPool) -> Any:
    """The auction's shape with nothing but its model calls (the same prompts): Sends for bids and jury, one execute."""
    def call(agent: str, phase: str, messages: list[Any]) -> str:
        model = factory(pool.get(agent), phase=phase, max_tokens=64, logprobs=False)
        return str(model.invoke(messages).content)

    g = StateGraph(_Bare)
    g.add_node("prepare", lambda s: {"agents": list(pool.names)})
    g.add_node("bid", lambda p: {"bids": [call(p["agent"], "bid", bid_messages(p["task"]))]})
    g.add_node("score", lambda s: {})
    g.add_node("jury", lambda p: {"votes": [call(p["judge"], "jury", jury_messages(p["task"], p["bid"]).messages)]})
    g.add_node("select", lambda s: {})
    g.add_node("execute", lambda s: {"answer": call(pool.names[-1], "execute", [("system", execute_system_prompt(s["bids"][0], [])),
                                                                               ("user", s["task"])])})
    g.add_edge(START, "prepare")
    g.add_conditional_edges("prepare", lambda s: [Send("bid", {"agent": a, "task": s["task"]}) for a in s["agents"]], ["bid"])
    g.add_edge("bid", "score")
    g.add_conditional_edges(
        "score", lambda s: [Send("jury", {"judge": j, "bid": b, "task": s["task"]}) for j in s["agents"] for b in s["bids"]], ["jury"]
    )
    g.add_edge("jury", "select")
    g.add_edge("select", "execute")
    g.add_edge("execute", END)
    return g.compile()


def graph_overhead(n: int) -> None:
    """SALE vs the bare same-shape graph with instant fake models (4 agents)."""
    pool = pool_of(("a", 0.05), ("b", 0.09), ("c", 0.16), ("d", 0.36))
    responders = {"bid": lambda a, m: "1. search 2. answer", "jury": lambda a, m: "SCORE: 4", "execute": lambda a, m: "Final Answer: x"}
    sale = build_sale_graph(model_factory=FakeFactory(responders), tools=[]).compile()
    bare = _bare_graph(FakeFactory(responders), pool)
    ctx = _context(pool)
    for _ in range(3):
        sale.invoke(TASK, context=ctx)
        bare.invoke(TASK)
    sale_s, bare_s = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        sale.invoke(TASK, context=ctx)
        sale_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        bare.invoke(TASK)
        bare_s.append(time.perf_counter() - t0)
    s, b = statistics.median(sale_s), statistics.median(bare_s)
    print(f"2. graph overhead, instant models, 4 agents (4 bids, 16 jury calls, 1 execute), median of {n}")
    print(f"   SALE {s * 1000:6.1f} ms   bare graph {b * 1000:6.1f} ms   ratio x{s / b:.2f}")


def jury_modes(tasks: int) -> None:
    """Per-bid vs batched jury on the embedded pool, and the fan-out ratio."""
    from sale_graph import EmbeddedServer, embedded_pool
    from sale_graph.runner import run_auction

    questions = ["What is the capital of Australia?", "Who wrote Hamlet?", "What is 17 times 3?",
                 "Which planet is known as the red planet?", "What is the boiling point of water in Celsius?",
                 "Who painted the Mona Lisa?"][:tasks]
    server = EmbeddedServer()
    started = server.start() if not server.running() else []
    try:
        pool = embedded_pool()
        graph = build_sale_graph(tools=[]).compile()
        print(f"3. embedded pool ({', '.join(pool.names)}), {len(questions)} tasks, execution capped at 1 step")
        for mode in ("per_bid", "batched"):
            rows = []
            for q in questions:
                run = run_auction({"task": q}, _context(pool, jury_mode=mode, execute_max_steps=1), graph=graph)
                st = run.state
                jury = [e for e in st["ledger"] if e["phase"] == "jury"]
                bids = [e for e in st["ledger"] if e["phase"] == "bid"]
                ideal = max((e["seconds"] for e in bids), default=0) + max((e["seconds"] for e in jury), default=0)
                missing = sum(1 for v in st["votes"] if v["status"] != "ok")
                rows.append((len(jury), sum(e["input_tokens"] + e["output_tokens"] for e in jury), run.timings["auction"],
                             run.timings["auction"] / ideal if ideal else float("nan"), missing, len(st["votes"])))
            calls, tokens, wall, ratio, missing, votes = (statistics.mean(c) for c in zip(*rows, strict=True))
            print(f"   {mode:<8} jury calls {calls:4.1f}  jury tokens {tokens:6.0f}  auction {wall:5.1f} s  "
                  f"fan-out ratio {ratio:4.2f}  missing votes {missing:.1f}/{votes:.0f}")
    finally:
        if started:
            server.stop()


def main() -> None:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per call of the loopback endpoint")
    parser.add_argument("--runs", type=int, default=20, help="concurrent auctions")
    parser.add_argument("--server-process", action="store_true", help="run the loopback endpoint in its own process")
    parser.add_argument("--repeat", type=int, default=3, help="batches of each mode (medians are printed)")
    parser.add_argument("--style", choices=STYLES, default="openai",
                        help="how the models answer: plain, or thinking first (vLLM's separated reasoning, Qwen3's inline <think>)")
    parser.add_argument("--overhead-runs", type=int, default=30)
    parser.add_argument("--embedded", action="store_true", help="also compare the jury modes on the embedded pool (slow)")
    parser.add_argument("--tasks", type=int, default=4, help="tasks for the embedded comparison")
    args = parser.parse_args()
    concurrent_auctions(args.latency, args.runs, args.server_process, args.repeat, args.style)
    graph_overhead(args.overhead_runs)
    if args.embedded:
        jury_modes(args.tasks)


if __name__ == "__main__":
    main()
