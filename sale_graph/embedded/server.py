"""The embedded pool's model servers: one llama.cpp server process per model on loopback.

Each model runs in its own server process (one thread each), so the two agents'
calls really run in parallel on a 2-core machine: llama-cpp-python's
``llama_cpp.server`` (one request at a time) or llama.cpp's ``llama-server``
(several slots decoded together), after the models' ``backend``. The servers are
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
from typing import cast

import httpx

from sale_graph.embedded.models import (
    HOST,
    Backend,
    EmbeddedModel,
    embedded_models,
    llama_server_binary,
    model_path,
)
from sale_graph.errors import ServerError
from sale_graph.storage.paths import data_path

PARENT_ENV = "SALE_SERVER_PARENT_PID"  # the server exits with this process (see sale_graph.embedded.llama_entry)

CACHE_RAM_MIB = 256
"""Host memory (MiB) each llama-server may keep prompt caches in (llama.cpp's default is 8 GiB a server)."""

PLAIN_TEMPLATE = (
    "{%- set ns = namespace(first=true) -%}"
    "{%- for message in messages -%}"
    "{%- if message['content'] -%}"
    "{%- if not ns.first -%}{{- '\\n\\n' -}}{%- endif -%}"
    "{{- message['content'] -}}"
    "{%- set ns.first = false -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
)
"""llama-server's ``sale-plain``: the messages' texts joined by blank lines, no chat markup (see ``llama_entry``)."""


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


def _llama_server_args(model: EmbeddedModel) -> list[str]:
    """The ``llama-server`` command line for ``model``: its slots share one thread and the context per slot stays ``n_ctx``."""
    args = [
        str(llama_server_binary()), "--model", str(model_path(model.alias)), "--alias", model.alias,
        "--host", HOST, "--port", str(model.port),
        "--ctx-size", str(model.n_ctx * model.slots), "--parallel", str(model.slots), "--cont-batching",
        "--threads", "1", "--threads-batch", "1", "--jinja", "--no-webui",
        # Prompt caching: a judge's calls share their instructions and examples, so each call
        # only decodes its own bid. Gemma 3's sliding-window layers keep no reusable cache
        # unless it is full-size; the host-memory copy of idle slots' prompts stays small.
        "--swa-full", "--cache-ram", str(CACHE_RAM_MIB),
        "--no-repack",  # plain CPU buffers: see sale_graph.embedded.llama_entry
    ]
    if model.chat_format == "sale-plain":
        template = data_path("server", "sale-plain.jinja")
        if not template.is_file() or template.read_text() != PLAIN_TEMPLATE:
            partial = template.with_name(f"{template.name}.{os.getpid()}")
            partial.write_text(PLAIN_TEMPLATE)
            partial.replace(template)  # atomic: a server starting at the same time reads a whole file
        args += ["--chat-template-file", str(template)]
    elif model.chat_format:
        args += ["--chat-template", model.chat_format]
    return args


def _command(model: EmbeddedModel) -> list[str]:
    """The command that serves ``model`` on its backend, through :mod:`sale_graph.embedded.llama_entry`."""
    entry = [sys.executable, "-m", "sale_graph.embedded.llama_entry"]
    if model.backend == "llama-server":
        return [*entry, "--exec", *_llama_server_args(model)]
    if importlib.util.find_spec("llama_cpp") is None:
        raise ServerError('llama-cpp-python is not installed; install the local extra: pip install -e ".[local]"')
    cfg_path = data_path("server", f"{model.alias}-{model.port}.json")
    cfg_path.write_text(json.dumps(_server_config(model), indent=2))
    return [*entry, "--config_file", str(cfg_path)]


def serving_backend(model: EmbeddedModel, timeout_s: float = 2.0) -> str | None:
    """Which backend answers on ``model``'s port with its alias (``None``: nothing, or another model).

    llama.cpp's ``llama-server`` lists its models as ``owned_by: "llamacpp"``;
    llama-cpp-python's server as ``owned_by: "me"``.
    """
    try:
        resp = httpx.get(f"{model.base_url}/models", timeout=timeout_s)
        if resp.status_code != 200:
            return None
        for entry in resp.json().get("data", []):
            if isinstance(entry, dict) and entry.get("id") == model.alias:
                return "llama-server" if entry.get("owned_by") == "llamacpp" else "llama-cpp-python"
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return None


def _server_slots(model: EmbeddedModel, timeout_s: float) -> int | None:
    """The parallel slots of the ``llama-server`` on ``model``'s port (its ``/props`` ``total_slots``)."""
    try:
        resp = httpx.get(f"http://{HOST}:{model.port}/props", timeout=timeout_s)
        slots = resp.json().get("total_slots") if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return slots if isinstance(slots, int) and slots > 0 else None


def running_setup(timeout_s: float = 2.0) -> tuple[Backend, int | None] | None:
    """The backend (and llama-server's slots) already serving every embedded model on its port, if one is.

    ``None`` when a model is not answering or the models are served by different backends.
    ``sale run`` uses it so that a pool started by ``sale serve --backend ... --slots ...``
    in another terminal is used as it is, whatever this process would have picked.
    """
    models = embedded_models("llama-cpp-python")  # the ports; the backend is what answers there
    found = {serving_backend(m, timeout_s) for m in models}
    if len(found) != 1 or None in found:
        return None
    backend = cast(Backend, found.pop())
    if backend != "llama-server":
        return backend, None
    slots = {_server_slots(m, timeout_s) for m in models}
    return backend, (slots.pop() if len(slots) == 1 else None)


def is_serving(model: EmbeddedModel, timeout_s: float = 2.0) -> bool:
    """Whether ``model`` answers on its port with its alias, served by its backend."""
    return serving_backend(model, timeout_s) == model.backend


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
        started: list[str] = []
        try:
            for m in self.models:
                if self._launch(m):
                    started.append(m.alias)
            self.wait_healthy()
        except ServerError:
            self.stop()
            raise
        return started

    def _launch(self, m: EmbeddedModel) -> bool:
        """Start ``m``'s server unless its backend answers on its port already (then ``False``)."""
        found = serving_backend(m)
        if found == m.backend:
            return False
        if found is not None:
            raise ServerError(
                f"{m.alias} on port {m.port} is served by {found}, not {m.backend}: stop that server, "
                f"set SALE_EMBEDDED_BACKEND={found}, or choose other ports with SALE_EMBEDDED_PORT"
            )
        command = _command(m)
        # Per port: servers started at once on other ports (tests, benchmarks) keep their own files.
        log = data_path("server", f"{m.alias}-{m.port}.log")
        self.logs[m.alias] = log
        with open(log, "wb") as fh:
            self.procs[m.alias] = subprocess.Popen(
                command, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                env={**os.environ, PARENT_ENV: str(os.getpid())},
            )
        return True

    def wait_healthy(self) -> None:
        """Block until every model answers, or raise :class:`ServerError`."""
        deadline = time.monotonic() + self.startup_timeout_s
        pending = list(self.models)
        while pending:
            for m in list(pending):
                proc = self.procs.get(m.alias)
                if proc is not None and proc.poll() is not None:
                    raise ServerError(
                        f"the {m.backend} server for {m.alias} exited with code {proc.returncode} while starting "
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
