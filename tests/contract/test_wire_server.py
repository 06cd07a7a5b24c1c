"""The real ``langchain_openai.ChatOpenAI`` (1.7) against the loopback wire server: the contract the library relies on.

Findings, with the installed source they come from (``.venv/lib/python3.11/site-packages``):

- ``reasoning_content`` / ``reasoning`` (vLLM reasoning parser) are DROPPED by ChatOpenAI:
  ``_convert_dict_to_message`` (langchain_openai/chat_models/base.py:220-265) builds the
  AIMessage from ``content``, ``function_call``, ``tool_calls``, ``audio`` and ``refusal`` only,
  and ``_convert_delta_to_message_chunk`` (base.py:558) likewise for stream deltas; the module
  docstring (base.py:1-12) says so. They are in neither ``additional_kwargs`` nor
  ``content_blocks`` (the ``openai`` block translator ignores them). Reasoning deltas arrive as
  chunks with ``content == ""``. A subclass can recover them: the openai SDK keeps unknown fields
  (``message.model_extra``), see ``test_a_subclass_can_recover_reasoning_content``.
- ``content`` behind vLLM's Qwen3 parser keeps the ``"\\n\\n"`` that followed ``</think>``;
  Qwen3 without a parser puts ``<think>...</think>`` in ``content``.
- Reasoning tokens: ``usage_metadata["output_token_details"]["reasoning"]`` =
  ``usage.completion_tokens_details.reasoning_tokens`` (``_create_usage_metadata``,
  base.py:4529-4555); ``output_tokens`` = ``completion_tokens`` (reasoning included).
- ``response_metadata["finish_reason"]`` and ``response_metadata["logprobs"]`` (the choice's
  ``logprobs`` dict as sent, ``{"content": [...], "refusal": None}``, or ``None``) come from
  ``_create_chat_result`` (base.py:2132-2138); when streaming, per-chunk ``logprobs`` are merged by
  concatenating the ``content`` lists (base.py:1669-1680). vLLM's logprobs cover the ``<think>``
  tokens too (see wire_formats [VLLM-CHAT]).
- Streamed usage needs ``stream_usage=True``: it defaults on only for OpenAI's own base URL
  (base.py:1435-1454); it sends ``stream_options: {"include_usage": true}`` (base.py:1880).
- ``ChatOpenAI(max_tokens=n)`` is sent as ``max_completion_tokens`` (base.py:3798, 3856), which
  llama-cpp-python ignores; a cap it honours must go in ``extra_body={"max_tokens": n}``.
- ``with_structured_output`` (default ``method="json_schema"``) sends
  ``response_format={"type": "json_schema", "json_schema": {"name", "schema", "strict": True}}``
  through ``chat.completions.parse`` (base.py:1959); ``finish_reason="length"`` then raises
  ``openai.LengthFinishReasonError`` (openai/lib/_parsing/_completions.py:110).
- Retries are the openai SDK's: ``max_retries`` defaults to 2 (openai/_constants.py:8) when
  ChatOpenAI passes none (base.py:1474-1475); 408/409/429/>=500 are retried
  (openai/_base_client.py:922-962), after ``Retry-After``/``retry-after-ms`` seconds when
  0 < value <= 120, else 0.5 * 2**n s (x 0.75-1 jitter, at most 8 s) (_base_client.py:849-920);
  each try carries ``x-stainless-retry-count`` (_base_client.py:551). A llama-cpp-python
  rejection is a 500, so it is retried too.
- Errors are re-raised as langchain_openai subclasses of both the openai and the
  langchain_core exception (base.py:642-749): 404 -> ``OpenAIModelNotFoundError``
  (``openai.NotFoundError``, ``ModelNotFoundError``), 401 -> ``AuthenticationError``,
  400 -> ``BadRequestError``, 429 -> ``RateLimitError``, 5xx -> ``InternalServerError``;
  ``e.body`` is the ``error`` object (openai/_client.py:635-666).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import httpx
import openai
import pytest
from langchain_core.exceptions import ModelAuthenticationError, ModelInvalidRequestError, ModelNotFoundError, ModelRateLimitError
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, SecretStr

from tests.contract.conftest import ChatFactory, ServerFactory
from tests.contract.wire_formats import (
    DEFAULT_PLAN,
    DEFAULT_SCORE,
    ModelBehaviour,
    count_tokens,
    default_thinking,
    logprob_entry,
    tokenize,
)
from tests.contract.wire_server import WireServer

pytestmark = pytest.mark.contract

PROMPT = "Plan the task"
THINK = default_thinking({"messages": [{"role": "user", "content": PROMPT}]})
RAW_QWEN = f"<think>\n{THINK}\n</think>\n\n{DEFAULT_PLAN}"
N_THINK = count_tokens(f"<think>\n{THINK}\n</think>")  # the think block, markers included


class Score(BaseModel):
    score: int


class Scores(BaseModel):
    scores: list[Score]


def usage(inp: int, out: int, reasoning: int | None = 0) -> dict[str, Any]:
    details = {} if reasoning is None else {"reasoning": reasoning}
    totals = {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out}
    return {**totals, "input_token_details": {}, "output_token_details": details}


def collect(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


# --- wire level --------------------------------------------------------------------------------


def test_tokenizer_round_trips_and_counts_markers_as_one_token() -> None:
    assert tokenize("<think>\nHi, you.\n</think>\n\nOK ") == ["<think>", "\nHi", ",", " you", ".", "\n</think>", "\n\nOK", " "]
    assert "".join(tokenize(RAW_QWEN)) == RAW_QWEN


def test_models_endpoint_lists_the_configured_ids(wire_server: WireServer) -> None:
    client = openai.OpenAI(base_url=wire_server.base_url, api_key="x")
    assert [m.id for m in client.models.list()] == wire_server.model_ids
    assert wire_server.base_url.endswith("/v1")


def test_sse_stream_ends_with_usage_chunk_and_done(wire_server: WireServer) -> None:
    import httpx

    body = {"model": "gpt-plain", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    body["stream_options"] = {"include_usage": True}
    with httpx.stream("POST", f"{wire_server.base_url}/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == count_tokens(DEFAULT_PLAN)
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


# --- content, usage, finish_reason -------------------------------------------------------------


def test_plain_invoke(make_chat: ChatFactory, wire_server: WireServer) -> None:
    msg = make_chat("gpt-plain").invoke(PROMPT)
    assert isinstance(msg, AIMessage) and msg.content == DEFAULT_PLAN
    assert msg.usage_metadata == usage(count_tokens(PROMPT), count_tokens(DEFAULT_PLAN))
    assert msg.response_metadata["finish_reason"] == "stop"
    assert make_chat("gpt-plain").invoke("Give the score").content == DEFAULT_SCORE
    sent = {"model": "gpt-plain", "messages": [{"role": "user", "content": PROMPT}], "stream": False}
    assert wire_server.requests("gpt-plain")[0].body == sent


def test_qwen3_inline_puts_think_block_in_content(make_chat: ChatFactory) -> None:
    msg = make_chat("qwen3-inline").invoke(PROMPT)
    assert msg.content == RAW_QWEN
    assert msg.usage_metadata == usage(count_tokens(PROMPT), count_tokens(RAW_QWEN))  # no parser: 0 reasoning


def test_qwen3_inline_cut_inside_think_is_unclosed_with_length(make_chat: ChatFactory, wire_server: WireServer) -> None:
    msg = make_chat("qwen3-inline", max_tokens=5).invoke(PROMPT)
    assert msg.content == "".join(tokenize(RAW_QWEN)[:5]) and msg.content.startswith("<think>")
    assert "</think>" not in msg.content
    assert msg.response_metadata["finish_reason"] == "length"
    assert msg.usage_metadata is not None and msg.usage_metadata["output_tokens"] == 5
    assert wire_server.requests()[-1].body["max_completion_tokens"] == 5  # type: ignore[index]


@pytest.mark.parametrize("model", ["qwen3-inline", "qwen3-vllm"])
def test_enable_thinking_false_turns_thinking_off(make_chat: ChatFactory, model: str) -> None:
    llm = make_chat(model, extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    msg = llm.invoke(PROMPT)
    assert msg.content == DEFAULT_PLAN
    assert msg.usage_metadata == usage(count_tokens(PROMPT), count_tokens(DEFAULT_PLAN))


def test_vllm_reasoning_content_is_on_the_wire_but_dropped_by_chat_openai(make_chat: ChatFactory, wire_server: WireServer) -> None:
    raw = openai.OpenAI(base_url=wire_server.base_url, api_key="x").chat.completions.create(
        model="qwen3-vllm", messages=[{"role": "user", "content": PROMPT}]
    )
    extra = raw.choices[0].message.model_extra or {}
    assert extra["reasoning_content"] == extra["reasoning"] == f"\n{THINK}\n"
    msg = make_chat("qwen3-vllm").invoke(PROMPT)
    assert msg.content == "\n\n" + DEFAULT_PLAN
    assert "reasoning_content" not in msg.additional_kwargs and "reasoning" not in msg.additional_kwargs
    assert [b["type"] for b in msg.content_blocks] == ["text"]
    assert msg.usage_metadata == usage(count_tokens(PROMPT), count_tokens(RAW_QWEN), reasoning=N_THINK)


def test_vllm_reasoning_cut_inside_think_gives_empty_content(make_chat: ChatFactory) -> None:
    msg = make_chat("qwen3-vllm", max_tokens=6).invoke(PROMPT)
    assert msg.content == ""  # vLLM sends content null: everything generated is reasoning
    assert msg.response_metadata["finish_reason"] == "length"
    assert msg.usage_metadata == usage(count_tokens(PROMPT), 6, reasoning=6)


def test_vllm_reasoning_stream_with_usage(make_chat: ChatFactory, wire_server: WireServer) -> None:
    chunks = list(make_chat("qwen3-vllm", stream_usage=True).stream(PROMPT))
    total = collect(chunks)
    assert total.content == "\n\n" + DEFAULT_PLAN and "reasoning_content" not in total.additional_kwargs
    assert all(c.content == "" for c in chunks[1:N_THINK])  # reasoning deltas arrive as empty chunks
    assert total.usage_metadata == usage(count_tokens(PROMPT), count_tokens(RAW_QWEN), reasoning=N_THINK)
    assert total.response_metadata["finish_reason"] == "stop"
    assert wire_server.requests()[-1].body["stream_options"] == {"include_usage": True}  # type: ignore[index]


@pytest.mark.parametrize("model", ["gpt-plain", "qwen3-inline", "qwen3-vllm"])
def test_stream_with_usage_adds_up_to_the_invoke_answer(make_chat: ChatFactory, model: str) -> None:
    llm = make_chat(model, stream_usage=True, logprobs=True, top_logprobs=1)
    whole, total = llm.invoke(PROMPT), collect(list(llm.stream(PROMPT)))
    assert (total.content, total.usage_metadata) == (whole.content, whole.usage_metadata)
    assert total.response_metadata["finish_reason"] == whole.response_metadata["finish_reason"] == "stop"
    assert total.response_metadata["logprobs"]["content"] == whole.response_metadata["logprobs"]["content"]


def test_stream_without_stream_usage_reports_no_usage_on_a_custom_base_url(make_chat: ChatFactory, wire_server: WireServer) -> None:
    total = collect(list(make_chat("gpt-plain").stream(PROMPT)))
    assert total.content == DEFAULT_PLAN and total.usage_metadata is None
    assert "stream_options" not in (wire_server.requests()[-1].body or {})


# --- logprobs ----------------------------------------------------------------------------------


def test_logprobs_arrive_in_response_metadata(make_chat: ChatFactory, wire_server: WireServer) -> None:
    msg = make_chat("gpt-plain", logprobs=True, top_logprobs=3).invoke(PROMPT)
    assert msg.response_metadata["logprobs"] == {"content": [logprob_entry(t, 3) for t in tokenize(DEFAULT_PLAN)], "refusal": None}
    body = wire_server.requests()[-1].body or {}
    assert (body["logprobs"], body["top_logprobs"]) == (True, 3)


def test_vllm_logprobs_cover_the_think_block_unless_configured_otherwise(make_chat: ChatFactory, wire_server: WireServer) -> None:
    llm = make_chat("qwen3-vllm", logprobs=True, top_logprobs=2)
    content = llm.invoke(PROMPT).response_metadata["logprobs"]["content"]
    assert [e["token"] for e in content] == tokenize(RAW_QWEN)  # [VLLM-CHAT]: every generated token
    wire_server.set_behaviour("qwen3-vllm", ModelBehaviour(style="vllm_reasoning", server_kind="vllm", logprobs_include_reasoning=False))
    content = llm.invoke(PROMPT).response_metadata["logprobs"]["content"]
    assert [e["token"] for e in content] == tokenize(RAW_QWEN)[N_THINK:]


def test_unsupported_logprobs_arrive_as_none(make_chat: ChatFactory) -> None:
    msg = make_chat("gpt-nologprobs", logprobs=True, top_logprobs=5).invoke(PROMPT)
    assert "logprobs" in msg.response_metadata and msg.response_metadata["logprobs"] is None


# --- structured output -------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-plain", "qwen3-vllm"])
def test_with_structured_output_json_schema(make_chat: ChatFactory, wire_server: WireServer, model: str) -> None:
    assert make_chat(model).with_structured_output(Score).invoke("Score it") == Score(score=4)
    rf = (wire_server.requests()[-1].body or {})["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["name"] == "Score" and rf["json_schema"]["strict"] is True
    assert make_chat(model).with_structured_output(Scores).invoke("Score all") == Scores(scores=[Score(score=4)] * 3)


def test_structured_output_cut_by_the_cap_raises_length_error(make_chat: ChatFactory) -> None:
    with pytest.raises(openai.LengthFinishReasonError):
        make_chat("gpt-plain", max_tokens=3).with_structured_output(Score).invoke("Score it")


def test_llama_cpp_rejects_json_schema_with_a_retried_500(make_chat: ChatFactory, wire_server: WireServer) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        make_chat("llama-cpp", max_retries=1).with_structured_output(Score).invoke("Score it")
    assert info.value.status_code == 500
    body: Any = info.value.body
    assert body["type"] == "internal_server_error" and "Input should be 'text' or 'json_object'" in body["message"]
    assert [r.retry_count for r in wire_server.requests("llama-cpp")] == [0, 1]


def test_llama_cpp_json_object_with_schema(make_chat: ChatFactory, wire_server: WireServer) -> None:
    rf = {"type": "json_object", "schema": Score.model_json_schema()}
    msg = make_chat("llama-cpp").invoke("Score it", response_format=rf)
    assert json.loads(str(msg.content)) == {"score": 4}
    assert (wire_server.requests()[-1].body or {})["response_format"] == rf


def test_llama_cpp_reads_max_tokens_only(make_chat: ChatFactory, wire_server: WireServer) -> None:
    ignored = make_chat("llama-cpp", max_tokens=3).invoke(PROMPT)
    assert ignored.response_metadata["finish_reason"] == "stop" and ignored.content == DEFAULT_PLAN
    honoured = make_chat("llama-cpp", extra_body={"max_tokens": 3}).invoke(PROMPT)
    assert honoured.response_metadata["finish_reason"] == "length" and honoured.content == "".join(tokenize(DEFAULT_PLAN)[:3])
    assert honoured.usage_metadata == usage(count_tokens(PROMPT), 3, reasoning=None)  # no completion_tokens_details
    bodies = [r.body or {} for r in wire_server.requests("llama-cpp")]
    assert (bodies[0].get("max_completion_tokens"), bodies[1].get("max_tokens")) == (3, 3)


def test_llama_cpp_stream_has_no_usage_chunk(make_chat: ChatFactory) -> None:
    total = collect(list(make_chat("llama-cpp", stream_usage=True).stream(PROMPT)))
    assert total.content == DEFAULT_PLAN and total.usage_metadata is None


def test_llama_cpp_rejection_matches_the_real_llama_cpp_python_server() -> None:
    """Drive llama-cpp-python's own router in-process (no model needed: validation fails first)."""
    app_module = pytest.importorskip("llama_cpp.server.app")
    fastapi = pytest.importorskip("fastapi")
    testclient = pytest.importorskip("fastapi.testclient")
    settings = pytest.importorskip("llama_cpp.server.settings")
    from tests.contract.wire_formats import llama_cpp_response_format_error

    previous = app_module._server_settings
    app_module.set_server_settings(settings.ServerSettings())
    try:
        app = fastapi.FastAPI()
        app.include_router(app_module.router)
        rf = {"type": "json_schema", "json_schema": {"name": "Score", "schema": Score.model_json_schema()}}
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "response_format": rf}
        real = testclient.TestClient(app, raise_server_exceptions=False).post("/v1/chat/completions", json=body)
    finally:
        app_module.set_server_settings(previous)
    fake = llama_cpp_response_format_error("json_schema")
    assert real.status_code == fake.status
    real_error, fake_error = real.json()["error"], fake.body["error"]
    assert {k: v for k, v in real_error.items() if k != "message"} == {k: v for k, v in fake_error.items() if k != "message"}
    assert real_error["message"].split("\n\n")[0] == fake_error["message"].split("\n\n")[0]


# --- failures and retries ----------------------------------------------------------------------


def test_429_retry_after_is_honoured_and_chat_openai_retries_twice_by_default(make_wire_server: ServerFactory) -> None:
    server = make_wire_server({"m": ModelBehaviour(fail_first=[429, 429], retry_after="0.2")})
    start = time.perf_counter()
    msg = server.chat_model("m", max_retries=None).invoke(PROMPT)  # None: the openai SDK's default, 2
    assert msg.content == DEFAULT_PLAN and time.perf_counter() - start >= 0.4
    records = server.requests("m")
    assert [(r.status, r.retry_count) for r in records] == [(429, 0), (429, 1), (200, 2)]
    gaps = [b.arrived - (a.finished or 0) for a, b in zip(records, records[1:], strict=False)]
    assert all(0.19 <= g < 0.5 for g in gaps)


def test_429_beyond_max_retries_raises_rate_limit_error(make_wire_server: ServerFactory) -> None:
    server = make_wire_server({"m": ModelBehaviour(fail_first=[429, 429], retry_after="0.05")})
    with pytest.raises(openai.RateLimitError) as info:
        server.chat_model("m", max_retries=1).invoke(PROMPT)
    assert isinstance(info.value, ModelRateLimitError) and info.value.response.headers["retry-after"] == "0.05"
    assert len(server.requests("m")) == 2


def test_500_without_retry_after_is_retried_with_backoff(make_wire_server: ServerFactory) -> None:
    server = make_wire_server({"m": ModelBehaviour(fail_first=[500])})
    assert server.chat_model("m", max_retries=1).invoke(PROMPT).content == DEFAULT_PLAN
    first, second = server.requests("m")
    assert 0.37 <= second.arrived - (first.finished or 0) < 0.8  # 0.5 s x jitter in [0.75, 1]


@pytest.mark.parametrize(
    ("model", "api_key", "error", "core_error", "code"),
    [
        ("no-such-model", None, openai.NotFoundError, ModelNotFoundError, "model_not_found"),
        ("m", "secret", openai.AuthenticationError, ModelAuthenticationError, "invalid_api_key"),
        ("bad", None, openai.BadRequestError, ModelInvalidRequestError, None),
    ],
)
def test_permanent_errors_are_not_retried(
    make_wire_server: ServerFactory, model: str, api_key: str | None, error: type[Exception], core_error: type[Exception], code: str | None
) -> None:
    server = make_wire_server({"m": ModelBehaviour(), "bad": ModelBehaviour(error_status=400)}, api_key=api_key)
    llm = server.chat_model(model, max_retries=2, api_key="wrong" if api_key else "x")
    with pytest.raises(error) as info:
        llm.invoke(PROMPT)
    assert isinstance(info.value, core_error)
    body: Any = getattr(info.value, "body", None)
    assert set(body) == {"message", "type", "param", "code"} and body["code"] == code
    assert len(server.requests()) == 1


def test_error_rates_inject_statuses_in_proportion_from_a_seeded_draw(make_wire_server: ServerFactory) -> None:
    def statuses(seed: int) -> list[int | None]:
        server = make_wire_server({"m": ModelBehaviour(error_rates=((429, 0.10), (500, 0.05)), retry_after="0")}, seed=seed)
        with httpx.Client() as client:
            for _ in range(400):
                client.post(f"{server.base_url}/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        return [r.status for r in server.requests("m")]

    first = statuses(seed=7)
    assert first == statuses(seed=7)  # the same seed, the same draws
    assert 25 <= first.count(429) <= 55 and 8 <= first.count(500) <= 32
    assert first.count(200) == 400 - first.count(429) - first.count(500)


def test_a_client_that_hangs_up_is_seen_during_the_latency_and_between_streamed_chunks(make_wire_server: ServerFactory) -> None:
    server = make_wire_server({"slow": ModelBehaviour(latency_s=2.0), "drip": ModelBehaviour(stream_interval_s=0.2)})
    body = {"messages": [{"role": "user", "content": "hi"}]}
    start = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.base_url}/chat/completions", json={**body, "model": "slow"}, timeout=0.2)
    with httpx.Client() as client, client.stream("POST", f"{server.base_url}/chat/completions",
                                                 json={**body, "model": "drip", "stream": True}) as response:
        next(response.iter_lines())
    deadline = time.perf_counter() + 2
    while (server.in_flight("slow") or server.in_flight("drip")) and time.perf_counter() < deadline:
        time.sleep(0.01)
    [slow], [drip] = server.requests("slow"), server.requests("drip")
    assert slow.client_closed and slow.status == 499 and (slow.finished or 99) - start < 1.0  # not the whole 2 s
    assert drip.client_closed and drip.status == 499 and (drip.finished or 99) - drip.arrived < 1.0


def test_latency_for_delays_only_the_requests_it_picks_and_answers_record_their_usage(make_wire_server: ServerFactory) -> None:
    def latency(request: Mapping[str, Any]) -> float:
        return 2.0 if "slow" in str(request["messages"]) else 0.0

    server = make_wire_server({"m": ModelBehaviour(latency_for=latency)})
    post = f"{server.base_url}/chat/completions"
    fast = httpx.post(post, json={"model": "m", "messages": [{"role": "user", "content": "fast please"}]}, timeout=5).json()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(post, json={"model": "m", "messages": [{"role": "user", "content": "slow please"}]}, timeout=0.3)
    deadline = time.perf_counter() + 2
    while server.in_flight("m") and time.perf_counter() < deadline:
        time.sleep(0.01)
    answered, left = server.requests("m")
    assert answered.status == 200 and answered.usage == fast["usage"]  # what the client read
    assert left.client_closed and left.usage is None and (left.finished or 99) - left.arrived < 1.0  # nothing generated


# --- concurrency and a reasoning-aware subclass ------------------------------------------------


def test_latency_overlaps_across_concurrent_requests(make_wire_server: ServerFactory) -> None:
    server = make_wire_server({"slow": ModelBehaviour(latency_s=0.3)})
    llm = server.chat_model("slow")
    start = time.perf_counter()
    answers = llm.batch([PROMPT] * 8, config={"max_concurrency": 8})
    elapsed = time.perf_counter() - start
    assert [a.content for a in answers] == [DEFAULT_PLAN] * 8
    assert server.max_in_flight("slow") == 8 and server.in_flight("slow") == 0
    assert 0.3 <= elapsed < 1.2


class ReasoningChatOpenAI(ChatOpenAI):
    """What a library needs to keep vLLM's ``reasoning_content``: copy it from the SDK objects."""

    def _create_chat_result(self, response: Any, generation_info: dict[str, Any] | None = None) -> Any:
        result = super()._create_chat_result(response, generation_info)
        if not isinstance(response, dict):
            extra = response.choices[0].message.model_extra or {}
            if extra.get("reasoning_content") is not None:
                result.generations[0].message.additional_kwargs["reasoning_content"] = extra["reasoning_content"]
        return result

    def _convert_chunk_to_generation_chunk(self, chunk: dict[str, Any], default_chunk_class: type, base_generation_info: Any) -> Any:
        generation = super()._convert_chunk_to_generation_chunk(chunk, default_chunk_class, base_generation_info)
        delta = (chunk.get("choices") or [{}])[0].get("delta") or {}
        if generation is not None and delta.get("reasoning_content"):
            generation.message.additional_kwargs["reasoning_content"] = delta["reasoning_content"]
        return generation


def test_a_subclass_can_recover_reasoning_content(wire_server: WireServer) -> None:
    llm = ReasoningChatOpenAI(model="qwen3-vllm", base_url=wire_server.base_url, api_key=SecretStr("x"), max_retries=0)
    assert llm.invoke(PROMPT).additional_kwargs["reasoning_content"] == f"\n{THINK}\n"
    assert collect(list(llm.stream(PROMPT))).additional_kwargs["reasoning_content"] == f"\n{THINK}\n"
