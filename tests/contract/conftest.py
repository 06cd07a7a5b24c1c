"""Fixtures of the contract tests: a started :class:`WireServer` and real ``ChatOpenAI`` clients on it.

Models served by ``wire_server`` (see :data:`CONTRACT_MODELS`):

- ``gpt-plain``: OpenAI style, plain content, log-probs supported.
- ``gpt-nologprobs``: OpenAI style that answers ``logprobs: null`` (as OpenAI reasoning models do).
- ``qwen3-inline``: Qwen3 behind a server with no reasoning parser: ``<think>...</think>`` in ``content``.
- ``qwen3-vllm``: Qwen3 behind vLLM ``--reasoning-parser qwen3``: ``reasoning_content`` + ``content``.
- ``llama-cpp``: llama-cpp-python's server: rejects ``json_schema``, reads only ``max_tokens``, no stream usage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from tests.contract.wire_formats import ModelBehaviour
from tests.contract.wire_server import WireServer

if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI

CONTRACT_MODELS: dict[str, ModelBehaviour] = {
    "gpt-plain": ModelBehaviour(),
    "gpt-nologprobs": ModelBehaviour(logprobs_supported=False),
    "qwen3-inline": ModelBehaviour(style="qwen3_inline", server_kind="vllm"),
    "qwen3-vllm": ModelBehaviour(style="vllm_reasoning", server_kind="vllm"),
    "llama-cpp": ModelBehaviour(server_kind="llama_cpp_python"),
}

ChatFactory = Callable[..., "ChatOpenAI"]
ServerFactory = Callable[..., WireServer]


@pytest.fixture
def wire_server() -> Iterator[WireServer]:
    """A started server with :data:`CONTRACT_MODELS` (starts in milliseconds; stopped after the test)."""
    with WireServer(CONTRACT_MODELS) as server:
        yield server


@pytest.fixture
def make_chat(wire_server: WireServer) -> ChatFactory:
    """``make_chat(model, **kwargs)``: a real ``ChatOpenAI`` on ``wire_server`` (``max_retries=0`` unless given)."""

    def make(model: str, **kwargs: Any) -> ChatOpenAI:
        return wire_server.chat_model(model, **kwargs)

    return make


@pytest.fixture
def make_wire_server() -> Iterator[ServerFactory]:
    """``make_wire_server(behaviours, api_key=None)``: more started servers, all stopped after the test."""
    servers: list[WireServer] = []

    def make(behaviours: Mapping[str, ModelBehaviour], **kwargs: Any) -> WireServer:
        server = WireServer(behaviours, **kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def fresh_detection() -> Iterator[None]:
    """Each test detects its endpoints' jury answer formats afresh (nothing remembered from another test)."""
    from sale_graph.jury.ask import forget_detected

    forget_detected()
    yield
    forget_detected()
