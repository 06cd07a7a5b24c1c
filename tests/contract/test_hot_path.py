"""The auction's hot path is cheaper, and the wire and the callbacks see the same as before (issue 21).

``SaleChatOpenAI`` sends the messages and tools through ``extra_body`` to skip the openai
SDK's request transform: the server must receive exactly the body a plain ``ChatOpenAI``
sends, for plain, tool-calling, streamed, async and structured-output calls.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from sale_graph.llm.chat_openai import SaleChatOpenAI
from tests.contract.wire_server import WireServer

pytestmark = pytest.mark.contract


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _bodies(server: WireServer, call: Any, **kwargs: Any) -> list[list[str]]:
    """The request bodies (``repr`` keeps the key order the client sent) of ``call`` by ChatOpenAI, then SaleChatOpenAI."""
    fields: dict[str, Any] = {"model": "gpt-plain", "base_url": server.base_url, "api_key": "x", "max_retries": 0, **kwargs}
    models = [cls(**fields) for cls in (ChatOpenAI, SaleChatOpenAI)]
    seen: list[list[str]] = []

    async def both() -> None:  # one event loop for both: langchain shares its async HTTP client per base URL
        for model in models:
            server.reset()
            result = call(model)
            if asyncio.iscoroutine(result):
                await result
            seen.append([repr(r.body) for r in server.requests()])

    asyncio.run(both())
    return seen


MESSAGES = [SystemMessage("You plan."), HumanMessage("What is 2 + 3?")]
CALLS = {
    "invoke": lambda m: m.invoke(MESSAGES),
    "tools": lambda m: m.bind_tools([add]).invoke(MESSAGES),
    "stream": lambda m: list(m.stream(MESSAGES)),
    "ainvoke": lambda m: m.ainvoke(MESSAGES),
    "astream": lambda m: _drain(m.astream(MESSAGES)),
    "structured": lambda m: m.with_structured_output({"title": "S", "type": "object", "properties": {"x": {"type": "integer"}}},
                                                    method="json_schema").invoke(MESSAGES),
}


async def _drain(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


@pytest.mark.parametrize("name", list(CALLS))
def test_sale_chat_openai_sends_the_same_body_as_chat_openai(wire_server: WireServer, name: str) -> None:
    settings = {"temperature": 0.2, "logprobs": True, "top_logprobs": 3, "stream_usage": True, "extra_body": {"max_tokens": 40}}
    plain, sale = _bodies(wire_server, CALLS[name], **settings)
    assert plain and sale == plain


def test_the_model_s_own_extra_body_is_left_alone(wire_server: WireServer) -> None:
    model = SaleChatOpenAI(model="gpt-plain", base_url=wire_server.base_url, api_key="x", max_retries=0, extra_body={"max_tokens": 9})
    model.bind_tools([add]).invoke(MESSAGES)
    model.invoke(MESSAGES)
    assert model.extra_body == {"max_tokens": 9}
    assert [r.body["max_tokens"] for r in wire_server.requests() if r.body] == [9, 9]
