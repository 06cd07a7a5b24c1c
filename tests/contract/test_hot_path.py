"""The auction's hot path is cheaper, and the wire and the callbacks see the same as before (issue 21).

``SaleChatOpenAI`` sends the messages and tools through ``extra_body`` to skip the openai
SDK's request transform: the server must receive exactly the body a plain ``ChatOpenAI``
sends, for plain, tool-calling, streamed, async and structured-output calls.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.outputs import LLMResult
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


def _models(server: WireServer, model: str, **kwargs: Any) -> list[ChatOpenAI]:
    fields: dict[str, Any] = {"model": model, "base_url": server.base_url, "api_key": "x", "max_retries": 0, **kwargs}
    return [cls(**fields) for cls in (ChatOpenAI, SaleChatOpenAI)]


def _same_fields(message: Any) -> dict[str, Any]:
    """What a caller reads from an answer, without the ids that differ per call."""
    meta = {k: v for k, v in message.response_metadata.items() if k not in ("id", "created")}
    extra = {k: v for k, v in message.additional_kwargs.items() if k != "reasoning_content"}
    return {"content": message.content, "meta": meta, "extra": extra, "usage": message.usage_metadata,
            "tool_calls": message.tool_calls}


@pytest.mark.parametrize("model", ["gpt-plain", "gpt-nologprobs", "qwen3-vllm", "llama-cpp"])
def test_an_awaited_answer_is_the_one_chat_openai_gives(wire_server: WireServer, model: str) -> None:
    plain, sale = _models(wire_server, model, logprobs=True, top_logprobs=2, extra_body={"max_tokens": 30})

    async def both() -> list[Any]:
        return [await m.ainvoke(MESSAGES) for m in (plain, sale)] + [await m.bind_tools([add]).ainvoke(MESSAGES) for m in (plain, sale)]

    a, b, tool_a, tool_b = asyncio.run(both())
    assert _same_fields(a) == _same_fields(b)
    assert _same_fields(tool_a) == _same_fields(tool_b)
    if model == "qwen3-vllm":  # the separated reasoning is kept on the fast path too
        assert b.additional_kwargs["reasoning_content"]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 429, 500, 503])
def test_an_awaited_failure_raises_what_chat_openai_raises(make_wire_server: Any, status: int) -> None:
    from tests.contract.wire_formats import ModelBehaviour

    server = make_wire_server({"m": ModelBehaviour(error_status=status)})
    raised: list[BaseException] = []

    async def both() -> None:
        for m in _models(server, "m"):
            try:
                await m.ainvoke(MESSAGES)
            except Exception as exc:  # noqa: BLE001 - the test compares what each raises
                raised.append(exc)

    asyncio.run(both())
    assert len(raised) == 2
    assert type(raised[0]) is type(raised[1]) and str(raised[0]) == str(raised[1])
    assert type(raised[0].__cause__) is type(raised[1].__cause__)


def test_an_unreachable_endpoint_raises_what_chat_openai_raises() -> None:
    raised: list[BaseException] = []

    async def both() -> None:
        for cls in (ChatOpenAI, SaleChatOpenAI):
            try:
                await cls(model="m", base_url="http://127.0.0.1:9/v1", api_key="x", max_retries=0, timeout=2).ainvoke("hi")
            except Exception as exc:  # noqa: BLE001 - the test compares what each raises
                raised.append(exc)

    asyncio.run(both())
    assert [type(e) for e in raised][0] is [type(e) for e in raised][1]


def test_an_awaited_plain_answer_is_built_on_the_loop(wire_server: WireServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import langchain_openai.chat_models.base as openai_base

    hops: list[str] = []
    real = openai_base.run_in_executor

    async def counted(*args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(args[1], "__name__", "?"))
        return await real(*args, **kwargs)

    monkeypatch.setattr(openai_base, "run_in_executor", counted)
    plain, sale = _models(wire_server, "gpt-plain")
    seen: list[list[str]] = []

    async def both() -> None:
        for model in (sale, plain):
            await model.ainvoke(MESSAGES)
            seen.append(list(hops))

    asyncio.run(both())
    assert seen == [[], ["_create_chat_result"]]  # ChatOpenAI's own path hops to a worker thread


def test_the_async_clients_are_the_sdk_s_own_kind(wire_server: WireServer) -> None:
    """The per-loop clients come from the library the openai SDK sends with (httpx2 for openai>=3).

    httpx's own pool (httpcore 1.0) rescans its connections, polling each idle socket, for every
    queued request: with the loop-local clients built on it, 40 concurrent auctions spent more
    CPU in the pool than in the rest of each call.
    """
    import openai

    from sale_graph import AgentSpec
    from sale_graph.llm.async_http import LoopLocalTransport

    sdk_client = next(c for c in openai.DefaultAsyncHttpxClient.__mro__[1:] if c.__name__ == "AsyncClient")
    model = AgentSpec(name="m", model="gpt-plain", base_url=wire_server.base_url, price_input=1, price_output=1).chat_model()
    outer = model.http_async_client
    assert isinstance(outer, sdk_client) and isinstance(outer._transport, LoopLocalTransport)

    async def call() -> Any:
        answer = await model.ainvoke(MESSAGES)
        return answer, outer._transport.client_for(asyncio.get_running_loop())

    answer, inner = asyncio.run(call())
    assert answer.content and isinstance(inner, sdk_client)


def test_the_per_loop_clients_send_on_aiohttp_and_each_loop_closes_its_own(wire_server: WireServer,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """With the SDK's aiohttp extra installed, a loop's client is its ``DefaultAioHttpClient``, closed as the loop ends.

    An aiohttp session dropped open logs "Unclosed client session" when collected: each
    ``asyncio.run`` closes its own on the way out, and the next run gets a new one.
    """
    import gc

    import openai

    from sale_graph import AgentSpec

    pytest.importorskip("aiohttp")
    model = AgentSpec(name="m", model="gpt-plain", base_url=wire_server.base_url, price_input=1, price_output=1).chat_model()
    transport = model.http_async_client._transport

    async def call() -> Any:
        answer = await model.ainvoke(MESSAGES)
        return answer, transport.client_for(asyncio.get_running_loop())

    first_answer, first = asyncio.run(call())
    second_answer, second = asyncio.run(call())
    gc.collect()
    assert first_answer.content and second_answer.content == first_answer.content
    assert isinstance(first, openai.DefaultAioHttpClient) and second is not first
    assert first.is_closed and second.is_closed
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


def test_every_loop_s_client_verifies_with_one_tls_context_built_off_the_loop(wire_server: WireServer) -> None:
    """A per-loop client reuses the process's TLS context instead of reading the CA bundle on its loop.

    Building the context (``verify=True``) parses the CA bundle, 20-70 ms of CPU: made by each
    loop's first request, it stalled every run on a new loop (each ``asyncio.run``) that long per
    endpoint. The model's client builds it when the model is made, before any loop runs.
    """
    from sale_graph import AgentSpec
    from sale_graph.llm import async_http

    pytest.importorskip("aiohttp")
    model = AgentSpec(name="m", model="gpt-plain", base_url=wire_server.base_url, price_input=1, price_output=1).chat_model()
    transport = model.http_async_client._transport
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    assert key in async_http._ssl_contexts  # built with the model, off any loop

    async def call() -> Any:
        await model.ainvoke(MESSAGES)
        return transport.client_for(asyncio.get_running_loop())

    first, second = asyncio.run(call()), asyncio.run(call())
    assert second is not first
    assert first._transport.ssl_context is second._transport.ssl_context is async_http.shared_ssl_context()


def test_the_shared_tls_context_follows_the_certificate_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared context is the one ``verify=True`` would build now: a changed ``SSL_CERT_FILE`` gets its own."""
    import certifi

    from sale_graph.llm.async_http import shared_ssl_context

    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    one = shared_ssl_context()
    assert shared_ssl_context() is one
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where() + "-not-there")
    with pytest.raises(FileNotFoundError):  # what a client made now would raise
        shared_ssl_context()
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    assert shared_ssl_context() is one


def test_an_unreachable_endpoint_raises_through_the_pool_s_client_what_chat_openai_raises() -> None:
    """A refused connection is a connection error through the per-loop client too, not a timeout."""
    import openai

    from sale_graph import AgentSpec

    url = "http://127.0.0.1:9/v1"
    models = [ChatOpenAI(model="m", base_url=url, api_key="x", max_retries=0, timeout=2),
              AgentSpec(name="m", model="m", base_url=url, price_input=1, price_output=1, timeout_s=2).chat_model()]
    raised: list[BaseException] = []

    async def both() -> None:
        for model in models:
            try:
                await model.ainvoke("hi")
            except Exception as exc:  # noqa: BLE001 - the test compares what each raises
                raised.append(exc)

    asyncio.run(both())
    assert [type(e) for e in raised] == [type(raised[0])] * 2 and str(raised[1]) == str(raised[0])
    assert isinstance(raised[1], openai.APIConnectionError) and not isinstance(raised[1], openai.APITimeoutError)


def test_the_pool_s_models_send_what_chat_openai_sends(wire_server: WireServer) -> None:
    """Through the per-loop client (aiohttp's, when installed): the same body and headers as a plain ChatOpenAI."""
    from sale_graph import AgentSpec

    spec = AgentSpec(name="m", model="gpt-plain", base_url=wire_server.base_url, price_input=1, price_output=1)
    pooled = spec.chat_model(phase="bid", max_tokens=40)
    plain = ChatOpenAI(model="gpt-plain", base_url=wire_server.base_url, api_key=pooled.openai_api_key, max_retries=0,
                       timeout=spec.timeout_s, temperature=pooled.temperature, stream_usage=True, extra_body=pooled.extra_body,
                       logprobs=pooled.logprobs, top_logprobs=pooled.top_logprobs)
    seen: list[tuple[list[str], list[dict[str, str]]]] = []

    async def both() -> None:
        for model in (plain, pooled):
            wire_server.reset()
            await model.ainvoke(MESSAGES)
            seen.append(([repr(r.body) for r in wire_server.requests()], _headers_without_ids(wire_server)))

    asyncio.run(both())
    assert seen[0][0] and seen[1] == seen[0]


def test_a_prompt_s_repeated_turns_are_built_once_and_sent_unchanged(wire_server: WireServer) -> None:
    from sale_graph.llm.call import call_model, prompt_messages
    from sale_graph.prompts import jury_messages

    first = jury_messages("Who wrote Hamlet?", "1. Recall the play.").messages
    second = jury_messages("Who wrote Hamlet?", "1. Search the web.").messages
    a, b = prompt_messages(first), prompt_messages(second)
    assert all(x is y for x, y in zip(a[:-1], b[:-1], strict=True))  # instructions and examples: the same objects
    assert a[-1] is not b[-1] and prompt_messages(["hi", HumanMessage("x")])[0] == "hi"  # anything else passes through

    model = ChatOpenAI(model="gpt-plain", base_url=wire_server.base_url, api_key="x", max_retries=0)
    model.invoke(first)
    call_model(model, first)
    plain, through_sale = (r.body for r in wire_server.requests())
    assert through_sale == plain


def test_each_endpoint_pools_its_own_connections(wire_server: WireServer) -> None:
    """A pool walks its connections on every request: one per endpoint, shared by its agents, phases and caps."""
    from sale_graph import AgentSpec

    def spec(name: str, model: str, url: str = wire_server.base_url) -> AgentSpec:
        return AgentSpec(name=name, model=model, base_url=url, price_input=1, price_output=1)

    a, a_again, b = spec("a", "gpt-plain"), spec("a2", "gpt-plain", wire_server.base_url + "/"), spec("b", "qwen3-vllm")
    client = a.chat_model(phase="bid", max_tokens=10).http_async_client
    assert a.chat_model(phase="jury", max_tokens=99, logprobs=True).http_async_client is client
    assert a_again.chat_model(phase="bid").http_async_client is client  # the same endpoint under another agent's name
    assert b.chat_model(phase="bid").http_async_client is not client


# --- the plain completion posted without the SDK's argument walk (sale_graph.llm.sdk_request) ---------------


def _headers_without_ids(server: WireServer) -> list[dict[str, str]]:
    """The recorded headers, the per-request idempotency key reduced to whether it was sent."""
    return [{k: ("<sent>" if k == "idempotency-key" else v) for k, v in r.headers.items()} for r in server.requests()]


@pytest.mark.parametrize("name", ["invoke", "ainvoke", "tools"])
def test_the_headers_are_the_ones_chat_openai_sends(wire_server: WireServer, name: str) -> None:
    seen: list[list[dict[str, str]]] = []

    async def both() -> None:
        for model in _models(wire_server, "gpt-plain", api_key="sk-test", timeout=7):
            wire_server.reset()
            result = CALLS[name](model)
            if asyncio.iscoroutine(result):
                await result
            seen.append(_headers_without_ids(wire_server))

    asyncio.run(both())
    plain, sale = seen
    assert plain and sale == plain and plain[0]["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize("awaited", [False, True])
def test_a_plain_completion_skips_the_sdk_s_argument_walk(wire_server: WireServer, monkeypatch: pytest.MonkeyPatch,
                                                          awaited: bool) -> None:
    """The walk (``maybe_transform``) runs for ChatOpenAI's call and for a stream, not for SaleChatOpenAI's plain call."""
    import openai.resources.chat.completions.completions as completions

    walks: list[str] = []
    name = "async_maybe_transform" if awaited else "maybe_transform"
    real = getattr(completions, name)

    def counted(data: Any, *args: Any, **kwargs: Any) -> Any:
        walks.append(str(data.get("model")))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(completions, name, counted)
    plain, sale = _models(wire_server, "gpt-plain")
    counts: list[int] = []

    async def run() -> None:  # one event loop: langchain shares its async HTTP client per base URL
        for model in (plain, sale):
            await model.ainvoke(MESSAGES) if awaited else model.invoke(MESSAGES)
        counts.append(len(walks))
        await _drain(sale.astream(MESSAGES)) if awaited else list(sale.stream(MESSAGES))
        counts.append(len(walks))

    asyncio.run(run())
    assert counts == [1, 2]  # ChatOpenAI's plain call walks, SaleChatOpenAI's does not; a stream goes through create
    assert walks[0] == "gpt-plain" and len(wire_server.requests()) == 3


@pytest.mark.parametrize("awaited", [False, True])
def test_the_sdk_s_own_retries_still_apply(make_wire_server: Any, awaited: bool) -> None:
    """A model with the SDK's retries on (SALE's pool sets them off) retries on the fast path as ChatOpenAI does."""
    from tests.contract.wire_formats import ModelBehaviour

    seen = []
    for index in range(2):  # ChatOpenAI, then SaleChatOpenAI, each on a server of its own
        server = make_wire_server({"m": ModelBehaviour(fail_first=[429], retry_after="0.05")})
        model = _models(server, "m", max_retries=1)[index]
        answer = asyncio.run(model.ainvoke(MESSAGES)) if awaited else model.invoke(MESSAGES)
        seen.append((answer.content, [(r.status, r.retry_count) for r in server.requests("m")]))
    assert seen[1] == seen[0] and seen[0][1] == [(429, 0), (200, 1)]


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500])
def test_a_blocking_failure_raises_what_chat_openai_raises(make_wire_server: Any, status: int) -> None:
    from tests.contract.wire_formats import ModelBehaviour

    server = make_wire_server({"m": ModelBehaviour(error_status=status)})
    raised: list[BaseException] = []
    for m in _models(server, "m"):
        with pytest.raises(Exception) as info:  # noqa: PT011 - the test compares what each raises
            m.invoke(MESSAGES)
        raised.append(info.value)
    assert type(raised[0]) is type(raised[1]) and str(raised[0]) == str(raised[1])


def test_a_payload_create_would_not_take_goes_through_create() -> None:
    """The body's key order is learned from create; keys it does not know turn the fast path off (create raises for them)."""
    from sale_graph.llm.sdk_request import body_order, chat_completion_request

    order = body_order(("messages", "model", "stream", "temperature", "extra_body"))
    assert order is not None and order.index("model") < order.index("messages") and "extra_body" not in order
    assert chat_completion_request({"messages": [], "model": "m", "no_such_argument": 1}) is None
    assert chat_completion_request({"messages": [], "model": "m", "stream": True}) is None
    body, options = chat_completion_request({"messages": [1], "model": "m", "temperature": 0.5, "extra_body": {"top_k": 3}}) or ({}, {})
    assert list(body) == [k for k in order if k in body] and body["messages"] == [1]
    assert options["extra_json"] == {"top_k": 3}


class _Raw:
    """A raw SDK response's surface that ``_parsed`` reads."""

    def __init__(self, content: bytes, content_type: str = "application/json") -> None:
        self.http_response = type("R", (), {"headers": {"content-type": content_type}, "content": content})()
        self.parsed_by_sdk = 0

    def parse(self) -> Any:
        import json

        from openai._models import construct_type
        from openai.types.chat import ChatCompletion

        self.parsed_by_sdk += 1
        try:
            return construct_type(type_=ChatCompletion, value=json.loads(self.http_response.content))
        except ValueError:
            return self.http_response.content.decode()


def test_an_answer_is_validated_in_one_step_and_a_stray_one_is_parsed_as_before() -> None:
    import json

    from sale_graph.llm.chat_openai import _parsed

    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    answer = {"id": "c", "object": "chat.completion", "created": 1, "model": "m", "usage": usage,
              "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                           "message": {"role": "assistant", "content": "hi", "reasoning_content": "think"}}]}
    raw = _Raw(json.dumps(answer).encode())
    validated = _parsed(raw)
    assert raw.parsed_by_sdk == 0 and validated.model_dump() == raw.parse().model_dump()  # the same model, extras kept
    stray = {**answer, "created": "yesterday"}  # off the schema: the SDK's lenient parse takes it, as before
    for body, content_type in ((json.dumps(stray).encode(), "application/json"), (b"<html>busy</html>", "text/html")):
        raw = _Raw(body, content_type)
        got = _parsed(raw)
        assert raw.parsed_by_sdk == 1 and repr(got) == repr(raw.parse())


# --- a call no callback handler would see skips LangChain's run bookkeeping (sale_graph.llm.lean_invoke) -------


class _Runs(BaseCallbackHandler):
    """Records each chat-model run a handler sees: its tags at the start, its token usage at the end."""

    def __init__(self) -> None:
        self.tags: list[list[str]] = []
        self.tokens: list[int] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *, tags: list[str] | None = None, **kwargs: Any) -> None:
        self.tags.append(list(tags or []))

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        message = response.generations[0][0].message  # type: ignore[attr-defined]  # a chat generation
        self.tokens.append((message.usage_metadata or {}).get("total_tokens", 0))


def _pool(server: WireServer) -> Any:
    from sale_graph import AgentPool, AgentSpec

    agents = tuple(AgentSpec(name=n, model="gpt-plain", base_url=server.base_url, price_input=p, price_output=p,
                             structured_output="json_schema") for n, p in (("small", 0.05), ("large", 0.36)))
    return AgentPool(agents, source="wire server")


@pytest.mark.parametrize("awaited", [False, True])
def test_a_traced_auction_shows_every_call_with_its_tags_and_usage(wire_server: WireServer, awaited: bool) -> None:
    """A handler passed to the graph run (as a LangSmith tracer is) sees each bid, vote and the execution."""
    from sale_graph import SaleContext, build_sale_graph

    graph, runs = build_sale_graph(tools=[]).compile(), _Runs()
    context = SaleContext(pool=_pool(wire_server), use_memory=False, check_endpoints=False)
    task = {"task": "What is the capital of Australia?"}
    config: Any = {"callbacks": [runs]}
    state = asyncio.run(graph.ainvoke(task, config, context=context)) if awaited else graph.invoke(task, config, context=context)
    ledger = state["ledger"]
    assert len(runs.tags) == len(ledger) == len(runs.tokens) == len(wire_server.requests())
    phases = sorted(next(t for t in tags if t.startswith("sale:")) for tags in runs.tags if "sale" in tags)
    assert phases == sorted(f"sale:{row['phase']}" for row in ledger)
    assert sum(runs.tokens) == sum(row["input_tokens"] + row["output_tokens"] for row in ledger)


@pytest.mark.parametrize("awaited", [False, True])
def test_an_untraced_call_skips_the_run_bookkeeping_and_answers_the_same(wire_server: WireServer, monkeypatch: pytest.MonkeyPatch,
                                                                         awaited: bool) -> None:
    from langchain_core.language_models import BaseChatModel

    from sale_graph.llm.call import acall_model, call_model

    runs: list[str] = []
    for name in ("agenerate", "generate"):
        real = getattr(BaseChatModel, name)
        monkeypatch.setattr(BaseChatModel, name, lambda self, *a, _real=real, _name=name, **k: runs.append(_name) or _real(self, *a, **k))
    model = SaleChatOpenAI(model="gpt-plain", base_url=wire_server.base_url, api_key="x", max_retries=0, logprobs=True, top_logprobs=2)

    async def both() -> list[Any]:
        lean = (await acall_model(model, MESSAGES)).message if awaited else call_model(model, MESSAGES).message
        counted = len(runs)
        full = await model.ainvoke(MESSAGES) if awaited else model.invoke(MESSAGES)
        return [lean, counted, full]

    lean, counted, full = asyncio.run(both())
    assert counted == 0 and len(runs) == 1  # the plain ainvoke/invoke runs LangChain's bookkeeping, SALE's untraced call not
    assert _same_fields(lean) == _same_fields(full)
    assert lean.id.startswith("lc_run--") and lean.id.endswith("-0") and len(lean.id) == len(full.id)
    bodies = [r.body for r in wire_server.requests()]
    assert len(bodies) == 2 and bodies[0] == bodies[1]


@pytest.mark.parametrize("awaited", [False, True])
def test_requests_built_from_a_template_send_what_chat_openai_sends(wire_server: WireServer, awaited: bool) -> None:
    """After a model's first request its client builds the next ones from a template: the wire sees the same."""
    prompts = [[HumanMessage("What is 2 + 3?")], MESSAGES, [SystemMessage("Be brief."), HumanMessage("Name a colour. " * 50)]]
    seen: list[list[tuple[str, dict[str, str]]]] = []
    models = _models(wire_server, "gpt-plain", api_key="sk-test", timeout=9)

    async def both() -> None:
        for model in models:
            wire_server.reset()
            for messages in prompts * 2:
                await model.ainvoke(messages) if awaited else model.invoke(messages)
            bodies = [repr(r.body) for r in wire_server.requests()]
            seen.append(list(zip(bodies, _headers_without_ids(wire_server), strict=True)))

    asyncio.run(both())
    plain, sale = seen
    assert len(plain) == 6 and sale == plain
    client = models[1].root_async_client if awaited else models[1].root_client
    assert vars(client)["_build_request"].built == 5  # every request after the first came from its template


@pytest.mark.parametrize("size", [200, 6_000_000])
def test_the_per_loop_clients_write_each_body_as_it_is_sent(wire_server: WireServer, size: int) -> None:
    """On Python 3.11 a loop's aiohttp session writes a request's body at once (aiohttp does it itself from 3.12).

    A small body goes out before the request waits for anything; one larger than the
    socket's buffer is written up to the buffer at once and the rest in aiohttp's own task:
    both arrive whole, and the answer is the one a plain ``ChatOpenAI`` gets.
    """
    import aiohttp

    from sale_graph import AgentSpec
    from sale_graph.llm import eager_write

    model = AgentSpec(name="m", model="gpt-plain", base_url=wire_server.base_url, price_input=1, price_output=1).chat_model()
    transport = model.http_async_client._transport
    question = [HumanMessage("x" * size)]

    async def call() -> tuple[Any, Any]:
        answer = await model.ainvoke(question)
        session = transport.client_for(asyncio.get_running_loop())._transport.client
        return answer, session

    answer, session = asyncio.run(call())
    plain = asyncio.run(_models(wire_server, "gpt-plain")[0].ainvoke(question))
    assert isinstance(session, aiohttp.ClientSession)
    assert (session._request_class is eager_write.EagerWriteRequest) == eager_write.NEEDED
    sent = [r.body["messages"] for r in wire_server.requests() if r.body]
    assert len(sent) == 2 and sent[0] == sent[1] == [{"role": "user", "content": "x" * size}]
    assert answer.content == plain.content
