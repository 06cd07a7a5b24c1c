"""The ``sale`` command: run an auction, check a pool, serve the embedded models or the gateway, manage the memory."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from rich.markup import escape

from sale_graph.bench.cli.commands import register_bench_commands
from sale_graph.cli.args import USER_ERROR, OneLineParser, http_url, positive_int
from sale_graph.cli.calibrate import register_calibrate_command
from sale_graph.cli.embedded import embedded_models_for_run
from sale_graph.cli.gateway import register_gateway_command
from sale_graph.cli.report import render_report
from sale_graph.context import SaleContext
from sale_graph.embedded import EmbeddedServer, embedded_pool
from sale_graph.embedded.models import (
    AUTO,
    BACKEND_ENV,
    BACKENDS,
    LLAMA_SERVER_SLOTS,
    SLOTS_ENV,
    embedded_models,
    setup_label,
)
from sale_graph.errors import SaleError, TaskError
from sale_graph.memory.commands import register_memory_commands
from sale_graph.pool import check_pool, load_pool, ping_agent


def _read_task_file(path: str) -> dict[str, Any]:
    """A task from a file: JSON with the input fields (task, tests, gold, domain...) or plain text.

    Raises:
        TaskError: the file is missing, unreadable, not UTF-8, empty, or JSON without a task.
    """
    p = Path(path)
    if p.is_dir():
        raise TaskError(f"task file {path!r} is a folder: give the file that holds the task")
    if not p.is_file():
        raise TaskError(f"task file {path!r} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TaskError(f"task file {path!r} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8") from exc
    except OSError as exc:
        raise TaskError(f"task file {path!r} cannot be read: {exc.strerror or exc}") from exc
    if not text.strip():
        raise TaskError(f"task file {path!r} is empty: write the task in it (plain text, or JSON with a 'task' field)")
    if p.suffix in (".json", ".jsonl"):
        line = text.strip().splitlines()[0] if p.suffix == ".jsonl" else text
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskError(f"task file {path!r} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("task") or data.get("text"), str):
            raise TaskError(f"task file {path!r} needs a 'task' string field")
        if "text" in data and "task" not in data:
            data["task"] = data.pop("text")
        return data
    return {"task": text.strip()}


def cmd_run(args: argparse.Namespace) -> int:
    """Run one auction and execution; print the bid table, winner, answer and ledger."""
    from sale_graph.events import SaleEvent, describe  # the event types import the graph state (LangChain)
    from sale_graph.runner import run_auction  # heavy (LangGraph, the OpenAI client): only `sale run` needs it

    err = Console(stderr=True)
    out = Console() if sys.stdout.isatty() else Console(width=160)
    if args.task_file:
        task = _read_task_file(args.task_file)
    elif args.task and args.task.strip():
        task = {"task": args.task}
    else:
        raise TaskError('give a task: sale run "QUESTION" or sale run --task-file FILE')
    if args.domain:
        task["domain"] = args.domain
    context = SaleContext(
        pool=args.pool, weights=args.weights, max_concurrency=args.max_concurrency,
        use_memory=not args.no_memory, memory_dir=args.memory_dir, memory_url=args.chroma_url,
        search={"backend": "local", "path": args.corpus} if args.corpus else None,
    )
    server = None
    try:
        models = None
        if args.pool is None:
            models = embedded_models_for_run(err)
            context.pool = embedded_pool(models[0].backend, models[0].slots)
        pool = context.resolved_pool()
        context.resolved_weights().check_judges(pool.names)  # a bad weights file fails before any server starts
        if models is not None:
            server = EmbeddedServer(models)
            if not server.running():
                with err.status(f"starting the embedded model servers ({setup_label(models)}, loopback)..."):
                    server.start()
        with err.status("checking endpoints..."):
            check_pool(pool)
        context.check_endpoints = False
        with err.status("auction running...") as status:
            def on_event(event: dict[str, Any]) -> None:
                line = describe(cast(SaleEvent, event))
                if line:
                    err.print(f"[dim]{event['t']:6.1f}s[/dim] {escape(line)}")
                    status.update(escape(line))

            result = run_auction(task, context, on_event=on_event)
    finally:
        if server is not None:
            server.stop()
    if args.json:
        print(json.dumps({**result.state, "timings": result.timings}, indent=2, default=str))
    else:
        out.print(render_report(result.state, result.timings))
    return 0


def cmd_pool_check(args: argparse.Namespace) -> int:
    """Ping every agent of the pool and print one line each."""
    pool = embedded_pool() if args.pool is None else load_pool(args.pool)
    bad = 0
    for agent in pool.agents:
        st = ping_agent(agent)
        bad += not st.ok
        print(f"{'ok ' if st.ok else 'BAD'} {agent.name:<20} {st.url:<40} {st.detail} ({st.latency_s * 1000:.0f} ms)")
    return 1 if bad else 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the embedded pool in the foreground until Ctrl-C."""
    backend = None if args.backend == AUTO else args.backend
    models = embedded_models(backend, args.slots)
    server = EmbeddedServer(models)
    started = server.start()
    print(f"backend: {setup_label(models)} per model" + (" (auto)" if backend is None else ""))
    for a in embedded_pool(models[0].backend, models[0].slots).agents:
        print(f"serving {a.name} at {a.base_url} (${a.price_output}/1M tokens, max_concurrency {a.max_concurrency})"
              + ("" if a.name in started else " [already running]"))
    if not started:
        return 0
    print("Ctrl-C to stop.", flush=True)
    # Block the signals so that sigwait receives them instead of their default
    # action killing this process before the servers are stopped.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        signal.sigwait(stop_signals)
    finally:
        server.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sale`` command."""
    parser = OneLineParser(prog="sale", description="SALE strategy auctions on LangGraph.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one auction and execute the task with the winner")
    run.add_argument("task", nargs="?", help="the task text")
    run.add_argument("--task-file", help="a JSON file with task/tests/gold/domain fields, or a text file")
    run.add_argument("--pool", help="pool TOML (default: the embedded local pool, started if needed)")
    run.add_argument("--weights", help="weights file (JSON or TOML; default: documented defaults)")
    run.add_argument("--domain", help="task domain: search or coding (picks the executor's tools)")
    run.add_argument("--corpus", help="local search corpus (JSONL file or folder) for web_search")
    run.add_argument("--max-concurrency", type=positive_int, default=4, help="model calls in flight at once (default 4)")
    run.add_argument("--no-memory", action="store_true", help="neither read nor write the auction memory")
    run.add_argument("--memory-dir", help="auction memory directory (default under $SALE_HOME)")
    run.add_argument("--chroma-url", type=http_url, help="shared Chroma server for the memory, http://host:port")
    run.add_argument("--json", action="store_true", help="print the final state as JSON")
    run.set_defaults(func=cmd_run)

    pool = sub.add_parser("pool", help="pool commands")
    pool_sub = pool.add_subparsers(dest="pool_command", required=True)
    check = pool_sub.add_parser("check", help="ping every agent's endpoint")
    check.add_argument("--pool", help="pool TOML (default: the embedded pool)")
    check.set_defaults(func=cmd_pool_check)

    serve = sub.add_parser("serve", help="serve the embedded local pool (llama.cpp on loopback) until Ctrl-C")
    serve.add_argument("--backend", choices=(AUTO, *BACKENDS), default=os.environ.get(BACKEND_ENV, "").strip() or AUTO,
                       help=f"model server (default ${BACKEND_ENV} or auto: llama-server when installed, else llama-cpp-python)")
    serve.add_argument("--slots", type=int,  # checked against its range (1-64) by the embedded pool
                       help=f"llama-server's parallel slots per model (default ${SLOTS_ENV} or {LLAMA_SERVER_SLOTS})")
    serve.set_defaults(func=cmd_serve)

    register_gateway_command(sub)
    register_memory_commands(sub)
    register_bench_commands(sub)
    register_calibrate_command(sub)
    return parser


def error_line(exc: BaseException) -> str:
    """A library error as the one line the CLI prints: its message, whitespace folded."""
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sale`` console script.

    Every user error prints one line naming the input at fault and exits with 2: a bad
    option (the parser, :class:`~sale_graph.cli.args.OneLineParser`), a library error
    (:class:`~sale_graph.errors.SaleError`: bad input or an unusable endpoint, the memory's,
    the benchmark harness's), a file the system refuses (an ``OSError`` naming a file).
    Anything else is a bug and keeps its traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SaleError as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return USER_ERROR
    except OSError as exc:
        if exc.filename is None:  # not about a file the user named: a bug or the network, keep the traceback
            raise
        print(f"error: {exc.filename}: {exc.strerror or error_line(exc)}", file=sys.stderr)
        return USER_ERROR
