"""``sale gateway``: serve the SALE gateway (an OpenAI-compatible endpoint whose model ``sale`` is an auction).

::

    sale gateway --pool pool.toml [--weights W] [--host 127.0.0.1] [--port 8100] [--workers N] [--total-workers T]
                 [--api-keys-env NAME] [--session-idle S] [--sessions URL] [--no-memory | --memory-dir D | --chroma-url URL]

The settings are checked in this process before anything is served (a bad pool, weights
file or keys variable is one error line); the app is then served by uvicorn. With
``--workers N`` the worker processes build the same app from ``$SALE_GATEWAY_CONFIG``
(:mod:`sale_graph.integrations.gateway.asgi`). Without ``--pool`` the embedded pool
answers (its servers are started, and stopped at the end, when they are not running).

The workers share each endpoint's ``max_concurrency``: each holds ``max_concurrency // T``
slots, ``T`` being ``--total-workers`` (the workers of every machine serving the pool;
default ``--workers``), so together they never pass it. The command prints each agent's
share; an agent whose bound is below ``T`` stops it at start.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from sale_graph.cli.embedded import embedded_models_for_run

if TYPE_CHECKING:  # the gateway extra: imported where the command runs
    from starlette.applications import Starlette

    from sale_graph.pool import AgentSpec

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8100
FACTORY = "sale_graph.cli.gateway:worker_app"
KEEP_ALIVE_S = 75
"""Seconds an idle client connection stays open: longer than clients keep theirs (5 s for httpx and the
``openai`` SDK, 60 s behind most load balancers), so the client closes an idle connection first and never
sends a request on one the gateway is closing (uvicorn's default, 5 s, races the SDK's: "Connection error")."""


def gateway_config(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`~sale_graph.integrations.gateway.create_gateway_app` keywords the command line gives (JSON-ready)."""
    config: dict[str, Any] = {"pool": str(Path(args.pool).resolve()) if args.pool else None,
                              "session_idle_s": float(args.session_idle),
                              "workers": args.total_workers or args.workers}
    if args.weights:
        config["weights"] = str(Path(args.weights).resolve())
    if args.api_keys_env:
        config["api_keys_env"] = args.api_keys_env
    if args.sessions:
        config["sessions"] = args.sessions
    if args.no_memory:
        config["use_memory"] = False
    if args.memory_dir:
        config["memory_dir"] = str(Path(args.memory_dir).resolve())
    if args.chroma_url:
        config["memory_url"] = args.chroma_url
    return config


def _warnings(args: argparse.Namespace, config: dict[str, Any]) -> list[str]:
    notes = []
    if args.workers > 1 and not config.get("sessions", "").startswith(("sqlite:", "postgres")):
        notes.append(f"{args.workers} workers: sessions are pinned in each worker process (in-process store), so a "
                     "session's later request that reaches another worker runs a new auction; use one worker to keep "
                     "every pin, or share them (--sessions sqlite:///sessions.db)")
        if config.get("use_memory", True) and not config.get("memory_url"):
            notes.append("several workers writing one Chroma directory: share a Chroma server instead (--chroma-url)")
    if not config.get("api_keys_env") and args.host not in ("127.0.0.1", "localhost", "::1"):
        notes.append(f"serving on {args.host} with no client keys: anyone who reaches it spends the pool's money "
                     "(--api-keys-env NAME)")
    return notes


def freeze_startup_objects() -> None:
    """Keep what the process holds now out of the garbage collector's full passes (``gc.freeze``).

    Importing LangGraph, LangChain, the openai SDK and Starlette leaves about 200k
    long-lived objects, and every full collection walks them all: with dozens of
    auctions in flight that was about a fifth of the gateway's CPU per model call.
    Frozen, they are never collected (they live as long as the server anyway); what
    is allocated later is collected as before. Called once the app is built, just
    before serving: this is the server's own process. The library never calls it
    (``create_gateway_app`` in someone else's process leaves their collector alone).
    """
    gc.collect()
    gc.freeze()


def worker_app() -> Starlette:
    """A ``--workers`` process's app: built from ``$SALE_GATEWAY_CONFIG``, then its startup objects frozen."""
    from sale_graph.integrations.gateway.asgi import app_from_env

    app = app_from_env()
    freeze_startup_objects()
    return app


def concurrency_line(agent: AgentSpec, slots: int, workers: int) -> str:
    """How many calls ``agent``'s endpoint gets from each worker, for the startup lines."""
    if agent.max_concurrency == 0:
        return "no concurrency bound"
    if workers == 1:
        return f"max_concurrency {agent.max_concurrency}"
    unused = agent.max_concurrency - slots * workers
    return (f"max_concurrency {agent.max_concurrency}: {slots} per worker x {workers} workers"
            + (f", {unused} unused" if unused else ""))


def cmd_gateway(args: argparse.Namespace) -> int:
    """Check the settings, start the embedded pool if it answers, and serve the gateway until Ctrl-C."""
    import asyncio

    import uvicorn  # the gateway extra: only this command needs it

    from sale_graph.embedded import EmbeddedServer
    from sale_graph.embedded.models import BACKEND_ENV, SLOTS_ENV, setup_label
    from sale_graph.integrations.gateway import create_gateway_app
    from sale_graph.integrations.gateway.asgi import CONFIG_ENV
    from sale_graph.integrations.gateway.metrics import MULTIPROC_ENV
    from sale_graph.integrations.gateway.sessions import check_sessions

    err = Console(stderr=True)
    if args.workers < 1:
        err.print("error: --workers must be at least 1")
        return 2
    if args.total_workers is not None and args.total_workers < args.workers:
        err.print(f"error: --total-workers ({args.total_workers}) counts the workers of every machine serving the pool, "
                  f"this one's {args.workers} included: give at least --workers")
        return 2
    config = gateway_config(args)
    models = None
    if args.pool is None:
        models = embedded_models_for_run(err)
        os.environ[BACKEND_ENV], os.environ[SLOTS_ENV] = models[0].backend, str(models[0].slots)  # the workers' pool too
    app = create_gateway_app(**config)  # every setting checked here, before anything starts
    gateway = app.state.sale_gateway
    with err.status("opening the session store..."):
        pins = asyncio.run(check_sessions(gateway.sessions))  # an unreachable store stops the command here
    if pins:
        err.print(f"session store {gateway.sessions!r}: {pins} live pins")
    if gateway.context.use_memory:
        with err.status("opening the auction memory..."):
            gateway.auctions.open_memory()  # a bad --memory-dir / --chroma-url stops the command here
    for agent in gateway.pool.agents:
        err.print(f"agent {agent.name}: {agent.model} at {agent.base_url} (${agent.price_output}/1M output tokens, "
                  f"{concurrency_line(agent, gateway.slots[agent.name], gateway.workers)})")
    for note in _warnings(args, config):
        err.print(f"[yellow]note:[/yellow] {note}")
    server = EmbeddedServer(models) if models is not None else None
    try:
        if server is not None and not server.running():
            with err.status(f"starting the embedded model servers ({setup_label(server.models)}, loopback)..."):
                server.start()
        else:
            server = None  # not ours to stop
        keys = f"keys from ${args.api_keys_env}" if args.api_keys_env else "no client keys"
        err.print(f"SALE gateway on http://{args.host}:{args.port}/v1 (model 'sale', {keys}, sessions idle after "
                  f"{args.session_idle:g} s); Ctrl-C to stop")
        if args.workers == 1:
            freeze_startup_objects()
            uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_keep_alive=KEEP_ALIVE_S)
        else:
            os.environ[CONFIG_ENV] = json.dumps(config)
            with tempfile.TemporaryDirectory(prefix="sale-gateway-metrics-") as metrics_dir:
                os.environ.setdefault(MULTIPROC_ENV, metrics_dir)  # the workers' metrics, summed on each scrape
                uvicorn.run(FACTORY, factory=True, host=args.host, port=args.port, workers=args.workers,
                            log_level=args.log_level, timeout_keep_alive=KEEP_ALIVE_S)
    finally:
        if server is not None:
            server.stop()
    return 0


def register_gateway_command(sub: Any) -> None:
    """Add ``sale gateway`` to the ``sale`` command's sub-parsers."""
    gateway = sub.add_parser("gateway", help="serve an OpenAI-compatible endpoint whose model 'sale' runs an auction")
    gateway.add_argument("--pool", help="pool TOML (default: the embedded local pool, started if needed)")
    gateway.add_argument("--weights", help="weights file (JSON or TOML; default: documented defaults)")
    gateway.add_argument("--host", default=DEFAULT_HOST, help=f"address to serve on (default {DEFAULT_HOST})")
    gateway.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    gateway.add_argument("--workers", type=int, default=1, help="worker processes (default 1; share their sessions with --sessions)")
    gateway.add_argument("--total-workers", type=int, metavar="T",
                         help="the gateway workers of every machine serving this pool (default --workers): each worker "
                              "holds max_concurrency // T slots at each endpoint")
    gateway.add_argument("--api-keys-env", metavar="NAME",
                         help="environment variable holding the accepted client keys, separated by commas")
    gateway.add_argument("--sessions", metavar="URL",
                         help="where pins live: memory:// (default, per worker), sqlite:///PATH (the workers of one "
                              "machine), postgresql://... (several machines)")
    gateway.add_argument("--session-idle", type=float, default=1800.0, metavar="S",
                         help="seconds a session's pin lives after its last request (default 1800)")
    where = gateway.add_mutually_exclusive_group()
    where.add_argument("--no-memory", action="store_true", help="neither read nor write the auction memory")
    where.add_argument("--memory-dir", help="auction memory directory (default under $SALE_HOME)")
    where.add_argument("--chroma-url", help="shared Chroma server for the memory, http://host:port")
    gateway.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                         help="uvicorn's log level (default info)")
    gateway.set_defaults(func=cmd_gateway)


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "KEEP_ALIVE_S", "cmd_gateway", "concurrency_line", "gateway_config",
           "register_gateway_command"]
