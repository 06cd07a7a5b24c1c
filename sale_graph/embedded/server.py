"""The embedded pool's model servers: one llama.cpp server process per model on loopback.

Each model runs in its own ``llama_cpp.server`` process (one thread each), so the
two agents' calls really run in parallel on a 2-core machine. The servers are
started by ``sale serve`` or, when nothing answers on the ports, by ``sale run``
itself, which stops them afterwards. A server exits with the process that
started it (see :mod:`sale_graph.embedded.llama_entry`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sale_graph.embedded.models import HOST, EmbeddedModel, ServerError, embedded_models, model_path
from sale_graph.paths import data_path

PARENT_ENV = "SALE_SERVER_PARENT_PID"  # the server exits with this process (see sale_graph.embedded.llama_entry)


def _server_config(model: EmbeddedModel) -> dict[str, object]:
    entry: dict[str, object] = {
        "model": str(model_path(model.alias)),
        "model_alias": model.alias,
        "n_ctx": model.n_ctx,
        "n_threads": 1,
        "n_threads_batch": 1,
        "logits_all": model.logprobs,
        "verbose": False,
    }
    if model.chat_format:
        entry["chat_format"] = model.chat_format
    return {"host": HOST, "port": model.port, "models": [entry]}


def is_serving(model: EmbeddedModel, timeout_s: float = 2.0) -> bool:
    """Whether ``model`` answers on its port with its alias."""
    try:
        resp = httpx.get(f"{model.base_url}/models", timeout=timeout_s)
        return resp.status_code == 200 and any(d.get("id") == model.alias for d in resp.json().get("data", []))
    except (httpx.HTTPError, ValueError):
        return False


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class EmbeddedServer:
    """Starts and stops the llama.cpp server processes of the embedded pool."""

    def __init__(self, models: tuple[EmbeddedModel, ...] | None = None, startup_timeout_s: float = 180.0) -> None:
        self.models = models if models is not None else embedded_models()
        self.startup_timeout_s = startup_timeout_s
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def running(self) -> bool:
        """Whether every embedded model answers already (started by us or by someone else)."""
        return all(is_serving(m) for m in self.models)

    def start(self) -> list[str]:
        """Start a server for each model that is not answering yet; wait until all are healthy.

        Returns the aliases it started. Raises :class:`ServerError` with the server
        log's tail if a process dies or does not answer in time.
        """
        if importlib.util.find_spec("llama_cpp") is None:
            raise ServerError('llama-cpp-python is not installed; install the local extra: pip install -e ".[local]"')
        started = []
        for m in self.models:
            if is_serving(m):
                continue
            cfg_path = data_path("server", f"{m.alias}.json")
            cfg_path.write_text(json.dumps(_server_config(m), indent=2))
            log = data_path("server", f"{m.alias}.log")
            self.logs[m.alias] = log
            with open(log, "wb") as fh:
                self.procs[m.alias] = subprocess.Popen(
                    [sys.executable, "-m", "sale_graph.embedded.llama_entry", "--config_file", str(cfg_path)],
                    stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                    env={**os.environ, PARENT_ENV: str(os.getpid())},
                )
            started.append(m.alias)
        try:
            self.wait_healthy()
        except ServerError:
            self.stop()
            raise
        return started

    def wait_healthy(self) -> None:
        """Block until every model answers, or raise :class:`ServerError`."""
        deadline = time.monotonic() + self.startup_timeout_s
        pending = list(self.models)
        while pending:
            for m in list(pending):
                proc = self.procs.get(m.alias)
                if proc is not None and proc.poll() is not None:
                    raise ServerError(
                        f"the llama.cpp server for {m.alias} exited with code {proc.returncode} while starting "
                        f"(port {m.port}). Log {self.logs[m.alias]}:\n{_log_tail(self.logs[m.alias])}"
                    )
                if is_serving(m):
                    pending.remove(m)
            if pending and time.monotonic() > deadline:
                names = ", ".join(f"{m.alias} on {m.base_url}" for m in pending)
                raise ServerError(f"embedded model server(s) did not answer within {self.startup_timeout_s:.0f} s: {names}")
            if pending:
                time.sleep(0.3)

    def stop(self) -> None:
        """Stop the processes this object started (not servers someone else runs)."""
        for alias, proc in list(self.procs.items()):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            del self.procs[alias]

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
