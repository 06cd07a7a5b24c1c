"""Client CPU per auction model call, asyncio and threads side by side in one run.

The contract tests' loopback wire server runs in a *separate process* (so its CPU is not
counted) and answers every call at once (or after ``--latency``); this process runs
``--auctions`` auctions, ``--concurrency`` at a time, with ``graph.invoke`` in threads and
with ``graph.ainvoke`` on one event loop, and prints the process CPU time (user + system,
``time.process_time``) spent per model call (bids, votes and the execution, counted from
the ledgers), the part of it spent in the garbage collector, with the wall time and auctions per second. Three agents, memory off,
no tools (the execution is one call), as in ``benchmarks/throughput.py``.

    python -m benchmarks.client_cpu [--auctions 120] [--concurrency 40] [--latency 0] [--repeat 3]
                                    [--logprobs] [--style vllm_reasoning] [--gc-freeze]
    python -m benchmarks.client_cpu --profile async   # cProfile of the asyncio run, top functions by own time

Goal: at most 2 ms of client CPU per call, asyncio no slower than threads.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sale_graph import AgentPool, AgentSpec, SaleContext, SaleInput, build_sale_graph

TASK: SaleInput = {"task": "What is the capital of Australia?"}
NAMES = ("small", "medium", "large")


STYLES = ("openai", "vllm_reasoning", "qwen3_inline")


def serve(latency: float, style: str = "openai") -> None:
    """Serve the three models on loopback, print the base URL, and stop when stdin closes."""
    from tests.contract.wire_formats import ModelBehaviour
    from tests.contract.wire_server import WireServer

    kind = "openai" if style == "openai" else "vllm"
    behaviour = ModelBehaviour(latency_s=latency, style=style, server_kind=kind)  # type: ignore[arg-type]  # checked by argparse
    with WireServer(dict.fromkeys(NAMES, behaviour)) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()


def start_server(latency: float, style: str = "openai") -> tuple[subprocess.Popen[str], str]:
    """The wire server in its own process, and its base URL."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.client_cpu", "--serve", "--latency", str(latency), "--style", style],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def latency_pool(base_url: str, logprobs: bool) -> AgentPool:
    """Three agents of different prices on ``base_url`` (per-endpoint limit 64)."""
    agents = tuple(
        AgentSpec(name=n, model=n, base_url=base_url, price_input=p, price_output=p, max_concurrency=64,
                  structured_output="json_schema", logprobs=logprobs)
        for n, p in zip(NAMES, (0.05, 0.16, 0.36), strict=True)
    )
    return AgentPool(agents, source="latency endpoint")


def tally(state: dict[str, Any]) -> tuple[int, int]:
    """(model calls, failed bids and votes) of one run; the state itself is dropped, as an app would."""
    return len(state["ledger"]), sum(1 for row in (*state["votes"], *state["bids"]) if row["status"] != "ok")


def run_threads(graph: Any, ctx: Callable[[], SaleContext], auctions: int, concurrency: int) -> list[tuple[int, int]]:
    """``auctions`` runs of ``graph.invoke``, ``concurrency`` threads at a time."""
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda _: tally(graph.invoke(TASK, context=ctx())), range(auctions)))


_LOOP = asyncio.Runner()  # one event loop for every asyncio batch, as a long-running app has


def run_async(graph: Any, ctx: Callable[[], SaleContext], auctions: int, concurrency: int) -> list[tuple[int, int]]:
    """``auctions`` runs of ``graph.ainvoke`` on one event loop, ``concurrency`` at a time."""

    async def main() -> list[tuple[int, int]]:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> tuple[int, int]:
            async with gate:
                return tally(await graph.ainvoke(TASK, context=ctx()))

        return list(await asyncio.gather(*(one() for _ in range(auctions))))

    return _LOOP.run(main())


RUNNERS = {"async": run_async, "threads": run_threads}


class GCClock:
    """CPU seconds spent in the garbage collector's passes (``gc.callbacks``), by generation."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.passes = [0, 0, 0]
        self._start = 0.0
        gc.callbacks.append(self._tick)

    def _tick(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.process_time()
        else:
            self.seconds[info["generation"]] += time.process_time() - self._start
            self.passes[info["generation"]] += 1


GC = GCClock()


@dataclass
class Batch:
    """One batch's figures: CPU and GC ms per model call, wall seconds, model calls, full GC passes."""

    cpu_ms: float
    gc_ms: float
    wall: float
    calls: int
    full_gc: int


def measure(mode: str, graph: Any, ctx: Callable[[], SaleContext], auctions: int, concurrency: int) -> Batch:
    """Run one batch of ``mode`` and measure it."""
    gc0, full0 = sum(GC.seconds), GC.passes[2]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    runs = RUNNERS[mode](graph, ctx, auctions, concurrency)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    calls = sum(c for c, _ in runs)
    failed = sum(f for _, f in runs)
    if failed:
        print(f"   warning: {failed} bids or votes failed in the {mode} batch", file=sys.stderr)
    return Batch(cpu / calls * 1000, (sum(GC.seconds) - gc0) / calls * 1000, wall, calls, GC.passes[2] - full0)


def main() -> None:
    """Start the server, warm up, then measure each mode ``--repeat`` times, interleaved."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auctions", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per call of the loopback endpoint")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--logprobs", action="store_true", help="ask for log-probs (entropy from log-probs)")
    parser.add_argument("--style", choices=STYLES, default="openai",
                        help="how the models answer: plain, or thinking first (vLLM's separated reasoning, Qwen3's inline <think>)")
    parser.add_argument("--profile", choices=tuple(RUNNERS), help="profile one batch of this mode instead")
    parser.add_argument("--profile-lines", type=int, default=45)
    parser.add_argument("--profile-sort", default="tottime", help="pstats sort key (tottime, cumulative)")
    parser.add_argument("--profile-out", help="also dump the profile to this file (for pstats)")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after the warm-up, as a server may do")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.latency, args.style)
        return
    proc, base_url = start_server(args.latency, args.style)
    try:
        pool = latency_pool(base_url, args.logprobs)
        graph = build_sale_graph(tools=[]).compile()

        def ctx() -> SaleContext:
            return SaleContext(pool=pool, use_memory=False, check_endpoints=False)

        for mode in RUNNERS:  # warm-up: imports, connections, caches
            measure(mode, graph, ctx, min(args.auctions, args.concurrency), args.concurrency)
        if args.gc_freeze:  # what a long-running server may do once it is warm: the collector skips what is there now
            gc.collect()
            gc.freeze()
        if args.profile:
            profiler = cProfile.Profile(time.thread_time)  # CPU time of the profiled thread, not wall time
            profiler.enable()
            batch = measure(args.profile, graph, ctx, args.auctions, args.concurrency)
            profiler.disable()
            print(f"{args.profile}: {batch.cpu_ms:.2f} ms CPU a call (under the profiler), {batch.calls} calls")
            if args.profile_out:
                profiler.dump_stats(args.profile_out)
            pstats.Stats(profiler).sort_stats(args.profile_sort).print_stats(args.profile_lines)
            return
        rows: dict[str, list[Batch]] = {m: [] for m in RUNNERS}
        for _ in range(args.repeat):
            for mode in RUNNERS:
                rows[mode].append(measure(mode, graph, ctx, args.auctions, args.concurrency))
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)
    calls = rows["async"][0].calls // args.auctions
    print(f"client CPU per model call: {args.auctions} auctions, {args.concurrency} at a time, {calls} calls an auction, "
          f"server in another process answering after {args.latency * 1000:.0f} ms, {args.style} answers, "
          f"log-probs {'on' if args.logprobs else 'off'}"
          f"{', gc.freeze() after the warm-up' if args.gc_freeze else ''}")
    print(f"   {'mode':<8}{'CPU ms/call (median, min-max)':>32}{'of it GC':>10}{'full GCs':>10}{'wall s':>9}{'auctions/s':>12}")
    for mode, results in rows.items():
        cpu = [r.cpu_ms for r in results]
        wall = statistics.median(r.wall for r in results)
        spread = f"({min(cpu):.2f}-{max(cpu):.2f})"
        print(f"   {mode:<8}{statistics.median(cpu):>14.2f}  {spread:<16}{statistics.median(r.gc_ms for r in results):>10.2f}"
              f"{statistics.median(r.full_gc for r in results):>10.0f}{wall:>9.2f}{args.auctions / wall:>12.1f}")
    a, t = statistics.median(r.cpu_ms for r in rows["async"]), statistics.median(r.cpu_ms for r in rows["threads"])
    print(f"   asyncio / threads CPU: x{a / t:.2f}")


if __name__ == "__main__":
    main()
