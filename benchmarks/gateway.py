"""What the SALE gateway adds to a request, measured side by side in one run.

Three processes: an OpenAI-compatible upstream answering every call after a fixed latency
(the contract tests' wire server: ``small`` and ``large``, ``large`` winning each auction),
``sale gateway`` on that pool (uvicorn, ``--no-memory``), and this client. The ratios:

(a) a pinned turn through the gateway against the same request (the body the gateway
    forwards, the winning strategy in its system message) sent straight to the winner's
    endpoint, alternating, p50 of each: goal <= 1.05x and under 5 ms added at p50;
(b) 50 concurrent sessions' first turns (auction, then the winner's answer) against one
    session's first turn: goal <= 2.5x;
(c) the time a first turn adds to a pinned one against the auction's own critical path
    (its slowest bid + its slowest jury call, from the answer's ledger): goal <= 1.1x.

It also prints the gateway's CPU time per pinned and per first turn (its processes'
``/proc`` counters, Linux): on a machine with few cores, (b) is bound by that CPU, not by
the upstream's latency.

    python -m benchmarks.gateway [--latency 0.2] [--pairs 40] [--sessions 50] [--rounds 3] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from sale_graph import AgentPool, load_pool
from sale_graph.integrations.gateway.request import parse_chat
from sale_graph.integrations.gateway.upstream import request_body
from tests.contract.gateway_server import GatewayProcess
from tests.contract.sale_apps import behaviours, write_pool
from tests.contract.wire_server import WireServer

QUESTION = [{"role": "user", "content": "What is 2 + 3?"}]
GOALS = {"a_ratio": 1.05, "a_added_ms": 5.0, "b_ratio": 2.5, "c_ratio": 1.1}


@dataclass(frozen=True)
class Upstream:
    """The wire server of the other process, by its URL."""

    base_url: str


def _serve_wire(latency: float, conn: Connection) -> None:
    """The upstream's process: serve until the parent says stop."""
    with WireServer(behaviours(latency_s=latency)) as server:
        conn.send(server.base_url)
        conn.recv()


def gateway_cpu_s(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` and its children (the uvicorn workers); NaN without ``/proc``."""
    total = 0.0
    try:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(entry) == pid or int(fields[1]) == pid:
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return float("nan")
    return total


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _chat(client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    response = client.post(url, json=body, headers=headers)
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed, response.json()


def _auction_path(answer: dict[str, Any]) -> float:
    """The auction's critical path: its slowest bid plus its slowest jury call (ledger seconds)."""
    ledger = answer["sale"]["ledger"]
    return (max(e["seconds"] for e in ledger if e["phase"] == "bid")
            + max(e["seconds"] for e in ledger if e["phase"] == "jury"))


def pinned_vs_direct(gateway: GatewayProcess, pool: AgentPool, pairs: int) -> dict[str, Any]:
    """(a): a pinned turn through the gateway and the same request straight to the winner, alternating."""
    session = {"x-sale-session": "bench-pinned"}
    with httpx.Client(timeout=60) as via, httpx.Client(timeout=60) as direct:
        _, first = _chat(via, f"{gateway.base_url}/chat/completions", {"model": "sale", "messages": QUESTION}, session)
        winner = pool.get(first["sale"]["winner"])
        chat = parse_chat(json.dumps({"model": winner.name, "messages": QUESTION}).encode(), {}, ["sale", winner.name])
        forwarded = request_body(winner, chat, first["sale"]["strategy"])
        upstream = winner.base_url.rstrip("/")
        gw_s, direct_s = [], []
        cpu = gateway_cpu_s(gateway.pid)
        for i in range(pairs + 3):  # the first 3 pairs warm the connections
            g, answer = _chat(via, f"{gateway.base_url}/chat/completions", {"model": "sale", "messages": QUESTION}, session)
            d, _ = _chat(direct, f"{upstream}/chat/completions", forwarded)
            assert answer["sale"]["pinned"], "the session lost its pin"
            if i >= 3:
                gw_s.append(g)
                direct_s.append(d)
        cpu = (gateway_cpu_s(gateway.pid) - cpu) / (pairs + 3)
    return {"gateway": gw_s, "direct": direct_s, "cpu": cpu}


async def _first_turns(gateway: GatewayProcess, n: int) -> tuple[float, list[float], list[dict[str, Any]]]:
    """``n`` new sessions' first turns at once: the wall time, each one's latency and answer."""
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        async def one() -> tuple[float, dict[str, Any]]:
            start = time.perf_counter()
            response = await client.post(f"{gateway.base_url}/chat/completions", json={"model": "sale", "messages": QUESTION},
                                         headers={"x-sale-session": uuid.uuid4().hex})
            response.raise_for_status()
            return time.perf_counter() - start, response.json()

        start = time.perf_counter()
        results = await asyncio.gather(*(one() for _ in range(n)))
        wall = time.perf_counter() - start
    assert all(not r[1]["sale"]["pinned"] for r in results)
    return wall, [r[0] for r in results], [r[1] for r in results]


def first_turns(gateway: GatewayProcess, sessions: int, rounds: int) -> dict[str, Any]:
    """(b) and (c): one session's first turn, sequentially ``rounds`` x 3 times, and ``sessions`` at once, ``rounds`` times."""
    asyncio.run(_first_turns(gateway, 2))  # warm-up: the compiled auction, the connections
    one_s, paths = [], []
    for _ in range(rounds * 3):
        _, [latency], [answer] = asyncio.run(_first_turns(gateway, 1))
        one_s.append(latency)
        paths.append(_auction_path(answer))
    walls, many = [], []
    for _ in range(rounds):
        wall, latencies, _ = asyncio.run(_first_turns(gateway, sessions))
        walls.append(wall)
        many += latencies
    return {"one": one_s, "paths": paths, "walls": walls, "many": many}


def _row(name: str, goal: str, measured: str, met: bool) -> str:
    return f"| {name} | {goal} | {measured} | {'met' if met else 'NOT met'} |"


def main() -> None:
    """Start the upstream and the gateway, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per upstream call (default 0.2)")
    parser.add_argument("--pairs", type=int, default=40, help="pinned/direct request pairs for (a)")
    parser.add_argument("--sessions", type=int, default=50, help="concurrent first turns for (b)")
    parser.add_argument("--rounds", type=int, default=3, help="batches of concurrent first turns")
    parser.add_argument("--workers", type=int, default=1, help="sale gateway --workers")
    args = parser.parse_args()

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    wire = ctx.Process(target=_serve_wire, args=(args.latency, child), daemon=True)
    wire.start()
    try:
        upstream = parent.recv()
        with tempfile.TemporaryDirectory(prefix="sale-gateway-bench-") as tmp:
            pool_file = write_pool(Path(tmp) / "pool.toml", Upstream(upstream))
            with GatewayProcess(pool_file, "--workers", str(args.workers)) as gateway:
                a = pinned_vs_direct(gateway, load_pool(pool_file), args.pairs)
                cpu1 = gateway_cpu_s(gateway.pid)
                bc = first_turns(gateway, args.sessions, args.rounds)
                cpu2 = gateway_cpu_s(gateway.pid)
    finally:
        parent.send("stop")
        wire.join(timeout=10)

    gw50, direct50 = statistics.median(a["gateway"]), statistics.median(a["direct"])
    one = statistics.median(bc["one"])
    wall = statistics.median(bc["walls"])
    added = one - gw50  # what a first turn adds to a pinned one: the auction, as the client sees it
    path = statistics.median(bc["paths"])
    print(f"sale gateway (1 process, {args.workers} worker(s)) on an upstream at {args.latency * 1000:.0f} ms a call "
          f"(2 agents: 2 bids, 4 jury calls, 1 answer a first turn)")
    print(f"(a) {args.pairs} pinned turns vs direct, alternating: gateway p50 {gw50 * 1000:.1f} ms "
          f"(p90 {_p(a['gateway'], 0.9) * 1000:.1f}), direct p50 {direct50 * 1000:.1f} ms (p90 {_p(a['direct'], 0.9) * 1000:.1f})")
    print(f"(b) one session's first turn p50 {one * 1000:.0f} ms ({len(bc['one'])} runs); {args.sessions} at once: wall "
          f"{', '.join(f'{w * 1000:.0f}' for w in bc['walls'])} ms, each p50 {statistics.median(bc['many']) * 1000:.0f} ms")
    print(f"(c) first turn - pinned turn = {added * 1000:.0f} ms; auction's own path (slowest bid + slowest jury call, "
          f"ledger) p50 {path * 1000:.0f} ms; nominal {2 * args.latency * 1000:.0f} ms")
    first = len(bc["one"]) + args.sessions * args.rounds + 2
    print(f"gateway CPU: {a['cpu'] * 1000:.1f} ms a pinned turn (each after 200 ms idle), {(cpu2 - cpu1) / first * 1000:.1f} ms "
          "a first turn (7 model calls: 6 in the auction, the answer forwarded)")
    print()
    print("| measure | goal | measured | |")
    print("|---|---|---|---|")
    print(_row("(a) pinned turn via gateway / direct to the winner, p50", f"<= {GOALS['a_ratio']}x",
               f"{gw50 / direct50:.3f}x", gw50 / direct50 <= GOALS["a_ratio"]))
    print(_row("(a) added at p50", f"< {GOALS['a_added_ms']:.0f} ms", f"{(gw50 - direct50) * 1000:.1f} ms",
               (gw50 - direct50) * 1000 < GOALS["a_added_ms"]))
    print(_row(f"(b) {args.sessions} concurrent first turns / one (wall, median of {args.rounds})", f"<= {GOALS['b_ratio']}x",
               f"{wall / one:.2f}x", wall / one <= GOALS["b_ratio"]))
    print(_row("(c) first turn's added time / (slowest bid + slowest jury call)", f"<= {GOALS['c_ratio']}x",
               f"{added / path:.2f}x (vs nominal {added / (2 * args.latency):.2f}x)", added / path <= GOALS["c_ratio"]))


if __name__ == "__main__":
    main()
