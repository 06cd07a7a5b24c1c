"""Payloads of OpenAI-compatible chat completions as real serving stacks send them.

The HTTP side lives in :mod:`tests.contract.wire_server`; this module decides *what*
a fake model generates (:func:`generate`) and builds the JSON bodies and SSE chunks
(:func:`completion_payload`, :func:`stream_chunks`, :func:`error_reply`). Every shape
mirrors a documented one; the references are cited by tag at the place that mirrors them:

[OAI-CREATE]  Request fields ``max_completion_tokens`` (``max_tokens`` deprecated),
              ``logprobs``/``top_logprobs``, ``response_format``, ``stream_options``:
              https://platform.openai.com/docs/api-reference/chat/create
[OAI-OBJECT]  Response ``choices[].message``, ``finish_reason`` (``"stop"``/``"length"``),
              ``logprobs.content[] = {token, logprob, bytes, top_logprobs[]}``, ``usage`` with
              ``completion_tokens_details.reasoning_tokens``:
              https://platform.openai.com/docs/api-reference/chat/object
              (the installed SDK's ``openai/types/chat/chat_completion.py``,
              ``chat_completion_token_logprob.py`` and ``openai/types/completion_usage.py``).
[OAI-STREAM]  ``chat.completion.chunk`` objects as ``data: {...}`` SSE events ending with
              ``data: [DONE]``; with ``stream_options.include_usage`` one extra chunk before
              ``[DONE]`` whose ``choices`` is ``[]`` and whose ``usage`` is set, all other chunks
              carrying ``usage: null``: https://platform.openai.com/docs/api-reference/chat/streaming
              and ``ChatCompletionStreamOptions`` in https://github.com/openai/openai-openapi
[OAI-ERRORS]  Error body ``{"error": {"message", "type", "param", "code"}}`` and the status
              codes 400/401/404/429/500/503: https://platform.openai.com/docs/guides/error-codes
[OAI-MODELS]  ``GET /v1/models`` list object: https://platform.openai.com/docs/api-reference/models/list
[VLLM-REASON] vLLM ``--reasoning-parser qwen3|deepseek_r1``: thinking text in
              ``message.reasoning_content`` (renamed ``reasoning`` in v0.11.2+, the old name
              still served), visible answer in ``content``; streamed as
              ``delta.reasoning_content`` then ``delta.content``; Qwen3 thinking turned off with
              ``chat_template_kwargs: {"enable_thinking": false}``; structured outputs with a
              reasoning parser constrain only the answer after the reasoning:
              https://docs.vllm.ai/en/latest/features/reasoning_outputs.html
[VLLM-QWEN3]  ``vllm/reasoning/qwen3_reasoning_parser.py``: ``reasoning, _, content =
              output.partition("</think>")`` (so ``content`` keeps the ``"\\n\\n"`` after
              ``</think>``); with no ``</think>`` (truncated) everything is reasoning and
              ``content`` is ``None``.
[VLLM-CHAT]   ``vllm/entrypoints/openai/serving_chat.py`` (now
              ``chat_completion/serving.py``), ``chat_completion_full_generator``: logprobs are
              built from ``output.token_ids`` -- every generated token, the ``<think>`` block
              included -- before the reasoning parser splits the text; the stream generator does
              the same per delta; ``completion_tokens = len(output.token_ids)``.
[VLLM-USAGE]  ``completion_tokens_details.reasoning_tokens`` is filled only when a reasoning
              parser is configured (vllm-project/vllm PR #45802; before it the field was null,
              issue #50895). Reasoning tokens count toward ``max_tokens`` (issue #28266).
[VLLM-STRUCT] ``response_format: {"type": "json_schema", ...}`` accepted:
              https://docs.vllm.ai/en/latest/features/structured_outputs/
[LLAMA-TYPES] llama-cpp-python ``llama_cpp/llama_types.py``: ``ChatCompletionRequestResponseFormat
              = {type: Literal["text", "json_object"], schema: NotRequired[JsonType]}``;
              ``llama_cpp/server/types.py`` ``CreateChatCompletionRequest`` has ``max_tokens`` and
              no ``max_completion_tokens`` (unknown fields are ignored); ``llama_cpp/server/app.py``
              never reads ``stream_options``; ``llama_cpp/server/errors.py`` ``RouteErrorHandler``
              turns any exception, request validation included, into HTTP 500
              ``{"error": {"message": str(exc), "type": "internal_server_error", "param": null,
              "code": null}}`` (https://github.com/abetlen/llama-cpp-python, v0.3.x).
[QWEN3-CARD]  Qwen3 writes its thinking as ``<think>...</think>`` then the answer;
              ``enable_thinking=False`` makes it answer with no think block:
              https://huggingface.co/Qwen/Qwen3-8B#switching-between-thinking-and-non-thinking-mode

The fake tokenizer (:func:`tokenize`) is deliberately simple and exact, so tests can
compute every expected count: a token is ``<think>``, ``</think>``, a run of word
characters or one other non-space character, each carrying the whitespace before it;
trailing whitespace is one more token. ``"".join(tokenize(s)) == s`` always holds.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tests.contract.wire_schema import schema_instance

Style = Literal["openai", "qwen3_inline", "vllm_reasoning"]
ServerKind = Literal["openai", "vllm", "llama_cpp_python"]
Responder = Callable[[Mapping[str, Any]], str]

THINK_START = "<think>"
THINK_END = "</think>"
CREATED = 1_700_000_000  # fixed ``created`` timestamp: payloads are deterministic

_TOKEN_RE = re.compile(r"\s*(?:</?think>|\w+|[^\w\s])|\s+")


# --- tokenizer -------------------------------------------------------------------------------


def tokenize(text: str) -> list[str]:
    """Split ``text`` into the fake model's tokens (see the module docstring); they join back to ``text``."""
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    """How many tokens :func:`tokenize` makes of ``text``."""
    return len(tokenize(text))


def message_text(content: Any) -> str:
    """The text of a message ``content``: a string, ``None`` or a list of ``{"type": "text"}`` parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text")


def prompt_tokens(request: Mapping[str, Any]) -> int:
    """``usage.prompt_tokens`` of a request: the tokens of every message's text (no per-message overhead)."""
    return sum(count_tokens(message_text(m.get("content"))) for m in request.get("messages") or [])


def last_user_text(request: Mapping[str, Any]) -> str:
    """The text of the last ``user`` message, or ``""``."""
    for m in reversed(request.get("messages") or []):
        if m.get("role") == "user":
            return message_text(m.get("content"))
    return ""


# --- default content -------------------------------------------------------------------------

DEFAULT_PLAN = "PLAN: 1. Restate the task. 2. Solve it step by step. 3. Check the result."
DEFAULT_SCORE = "SCORE: 4"


def default_responder(request: Mapping[str, Any]) -> str:
    """The default visible answer: ``SCORE: 4`` when the last user message mentions a score, else :data:`DEFAULT_PLAN`."""
    return DEFAULT_SCORE if re.search(r"\bscore\b", last_user_text(request), re.IGNORECASE) else DEFAULT_PLAN


def default_thinking(request: Mapping[str, Any]) -> str:
    """The default thinking text of the Qwen3 styles: it quotes the first eight words of the last user message."""
    words = last_user_text(request).split()[:8]
    return f"The user asks: {' '.join(words)}. I should answer briefly."


# --- behaviour -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelBehaviour:
    """How one served model id behaves on the wire.

    Attributes:
        style: ``"openai"`` plain content; ``"qwen3_inline"`` content is ``<think>...</think>``
            then the answer, as Qwen3 behind a server with no reasoning parser [QWEN3-CARD];
            ``"vllm_reasoning"`` thinking in ``message.reasoning_content`` (and ``reasoning``),
            answer in ``content`` [VLLM-REASON].
        server_kind: whose request validation and usage reporting to mirror: ``"openai"``,
            ``"vllm"`` or ``"llama_cpp_python"`` [LLAMA-TYPES].
        responder: ``(request_json) -> str``, the visible answer (:func:`default_responder`).
        thinker: ``(request_json) -> str``, the thinking text of the Qwen3 styles.
        logprobs_supported: ``False`` ignores ``logprobs: true`` and answers ``logprobs: null``.
        logprobs_include_reasoning: with ``style="vllm_reasoning"``, whether ``logprobs.content``
            covers the ``<think>`` block too, as vLLM does [VLLM-CHAT]; ``False`` gives only the
            ``content`` tokens, as the OpenAI schema reads.
        report_reasoning_tokens: send ``usage.completion_tokens_details``; ``None`` = as the
            server kind does (llama-cpp-python sends none).
        max_tokens_default: the cap when the request sets none (``None``: no cap).
        fail_first: status codes answered, in order, to this model's first requests.
        retry_after: the ``Retry-After`` header (seconds) sent with 429 and 503; ``None``: none.
        error_status: a permanent error (400, 401, 404, 500...) answered to every request.
        error_rates: ``(status, probability)`` pairs: each request (after ``fail_first``) is
            answered with that status with that probability, drawn from the server's seeded
            random generator (``((429, 0.1), (500, 0.05))``: 10% rate limits, 5% server errors).
        latency_s: fixed delay before a generated answer (errors are immediate).
        latency_for: ``(request_json) -> seconds``, the delay of each request, in place of
            ``latency_s`` when set (a test that needs some calls slow and others not).
        stream_interval_s: delay between streamed chunks.
    """

    style: Style = "openai"
    server_kind: ServerKind = "openai"
    responder: Responder = default_responder
    thinker: Responder = default_thinking
    logprobs_supported: bool = True
    logprobs_include_reasoning: bool = True
    report_reasoning_tokens: bool | None = None
    max_tokens_default: int | None = None
    fail_first: Sequence[int] = ()
    retry_after: str | None = "1"
    error_status: int | None = None
    error_rates: Sequence[tuple[int, float]] = ()
    latency_s: float = 0.0
    latency_for: Callable[[Mapping[str, Any]], float] | None = None
    stream_interval_s: float = 0.0

    def latency(self, request: Mapping[str, Any]) -> float:
        """The delay before the answer to ``request``."""
        return self.latency_for(request) if self.latency_for is not None else self.latency_s

    @property
    def reports_reasoning_tokens(self) -> bool:
        """Whether ``usage.completion_tokens_details`` is sent."""
        if self.report_reasoning_tokens is not None:
            return self.report_reasoning_tokens
        return self.server_kind != "llama_cpp_python"


# --- errors ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error answer: status, JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: Mapping[str, str]


# [OAI-ERRORS]: (type, code, message) per status.
_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Country, region, or territory not supported."),
    404: ("invalid_request_error", "model_not_found", "The model `{model}` does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests on {model}. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def openai_error(status: int, model: str = "", message: str | None = None, retry_after: str | None = None) -> ErrorReply:
    """An OpenAI-style error answer [OAI-ERRORS]; ``Retry-After`` goes with 429 and 503 only."""
    type_, code, default = _OPENAI_ERRORS.get(status, ("server_error", None, f"HTTP {status}"))
    body = {"error": {"message": message or default.format(model=model), "type": type_, "param": None, "code": code}}
    headers = {"Retry-After": retry_after} if retry_after is not None and status in (429, 503) else {}
    return ErrorReply(status, body, headers)


def llama_cpp_response_format_error(type_value: object) -> ErrorReply:
    """llama-cpp-python's answer to a ``response_format.type`` other than text/json_object [LLAMA-TYPES].

    Captured from llama-cpp-python 0.3.36's own router (FastAPI 0.165): pydantic's literal error
    is raised as ``RequestValidationError`` and ``RouteErrorHandler`` wraps ``str(exc)`` in a 500.
    The part after the blank line is FastAPI's endpoint context and varies with its version.
    """
    detail = {
        "type": "literal_error",
        "loc": ("body", "response_format", "type"),
        "msg": "Input should be 'text' or 'json_object'",
        "input": type_value,
        "ctx": {"expected": "'text' or 'json_object'"},
    }
    message = (
        f"1 validation error:\n  {detail!r}\n\n"
        '  File "llama_cpp/server/app.py", line 376, in create_chat_completion\n    POST /v1/chat/completions'
    )
    body = {"error": {"message": message, "type": "internal_server_error", "param": None, "code": None}}
    return ErrorReply(500, body, {})


def check_request(behaviour: ModelBehaviour, request: Mapping[str, Any]) -> ErrorReply | None:
    """The error a server of ``behaviour.server_kind`` answers to this request body, or ``None``."""
    rf = request.get("response_format")
    if rf is None:
        return None
    rf_type = rf.get("type") if isinstance(rf, Mapping) else None
    if behaviour.server_kind == "llama_cpp_python":
        return None if rf_type in ("text", "json_object") else llama_cpp_response_format_error(rf_type)
    if rf_type not in ("text", "json_object", "json_schema"):  # [OAI-CREATE]
        return openai_error(400, message=f"Invalid value: {rf_type!r}. Supported values are: 'text', 'json_object', and 'json_schema'.")
    if rf_type == "json_schema" and not isinstance(rf.get("json_schema"), Mapping):
        return openai_error(400, message="Missing required parameter: 'response_format.json_schema'.")
    return None


# --- structured answers ----------------------------------------------------------------------


def response_schema(behaviour: ModelBehaviour, request: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON schema the answer must satisfy: ``json_schema.schema`` [OAI-CREATE], or llama-cpp-python's ``json_object.schema``."""
    rf = request.get("response_format")
    if not isinstance(rf, Mapping):
        return None
    if rf.get("type") == "json_schema":
        schema = (rf.get("json_schema") or {}).get("schema")
        return dict(schema) if isinstance(schema, Mapping) else {}
    if rf.get("type") == "json_object" and behaviour.server_kind == "llama_cpp_python" and isinstance(rf.get("schema"), Mapping):
        return dict(rf["schema"])
    return None


# --- generation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Generation:
    """What the fake model generated for one request.

    Attributes:
        tokens: every generated token, after the cap (the ``<think>`` block first, if any).
        n_reasoning: how many of ``tokens`` belong to the ``<think>`` block, markers included.
        thinking: whether a think block was generated at all.
        finish_reason: ``"length"`` when the cap cut the output, else ``"stop"`` [OAI-OBJECT].
    """

    tokens: tuple[str, ...]
    n_reasoning: int
    thinking: bool
    finish_reason: str

    @property
    def raw_text(self) -> str:
        """The generated text as a server without a reasoning parser sends it."""
        return "".join(self.tokens)

    def split(self) -> tuple[str | None, str | None]:
        """``(reasoning, content)`` as vLLM's Qwen3 reasoning parser splits the output [VLLM-QWEN3]."""
        if not self.thinking:
            return None, self.raw_text
        head = "".join(self.tokens[: self.n_reasoning]).partition(THINK_START)[2]
        reasoning = head.partition(THINK_END)[0]
        return reasoning, "".join(self.tokens[self.n_reasoning :]) or None


def token_cap(behaviour: ModelBehaviour, request: Mapping[str, Any]) -> int | None:
    """The generation cap: ``max_completion_tokens`` then ``max_tokens`` [OAI-CREATE]; llama-cpp-python reads only ``max_tokens``."""
    fields = ("max_tokens",) if behaviour.server_kind == "llama_cpp_python" else ("max_completion_tokens", "max_tokens")
    for name in fields:
        value = request.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return behaviour.max_tokens_default


def generate(behaviour: ModelBehaviour, request: Mapping[str, Any]) -> Generation:
    """Generate the answer to ``request``: thinking (Qwen3 styles), then the visible answer, under the cap.

    Thinking is on for the Qwen3 styles unless ``chat_template_kwargs.enable_thinking`` is false
    [QWEN3-CARD]. A JSON ``response_format`` constrains the output from its first token, so it
    turns thinking off, except behind a reasoning parser, where vLLM constrains only the answer
    [VLLM-REASON]. Reasoning tokens count toward the cap [VLLM-USAGE].
    """
    rf = request.get("response_format")
    rf_type = rf.get("type") if isinstance(rf, Mapping) else None
    schema = response_schema(behaviour, request)
    if schema is not None:
        answer = json.dumps(schema_instance(schema))
    elif rf_type == "json_object":
        answer = json.dumps({"answer": behaviour.responder(request)})
    else:
        answer = behaviour.responder(request)
    template_kwargs = request.get("chat_template_kwargs") or {}
    thinking = behaviour.style != "openai" and template_kwargs.get("enable_thinking", True) is not False
    if rf_type in ("json_object", "json_schema") and behaviour.style != "vllm_reasoning":
        thinking = False
    raw = f"{THINK_START}\n{behaviour.thinker(request)}\n{THINK_END}\n\n{answer}" if thinking else answer
    tokens = tokenize(raw)
    cap = token_cap(behaviour, request)
    kept = tokens if cap is None else tokens[: max(cap, 0)]
    n_reasoning = 0
    if thinking:
        ends = [i for i, t in enumerate(kept) if t.strip() == THINK_END]
        n_reasoning = ends[0] + 1 if ends else len(kept)
    return Generation(tuple(kept), n_reasoning, thinking, "length" if len(kept) < len(tokens) else "stop")


# --- logprobs --------------------------------------------------------------------------------


def token_logprob(token: str) -> float:
    """The fake log-prob of ``token``: a value in ``[-0.7, -0.01]`` from its CRC32, so it is stable."""
    return -round(0.01 + (zlib.crc32(token.encode("utf-8")) % 1000) / 1000 * 0.69, 6)


def logprob_entry(token: str, top_k: int) -> dict[str, Any]:
    """One ``logprobs.content`` item [OAI-OBJECT]: the token itself first in ``top_logprobs``, then ``<altN>`` tokens 1.5 nats apart."""
    lp = token_logprob(token)
    tops = [{"token": token, "logprob": lp, "bytes": list(token.encode("utf-8"))}]
    for j in range(1, top_k):
        alt = f"<alt{j}>"
        tops.append({"token": alt, "logprob": round(lp - 1.5 * j, 6), "bytes": list(alt.encode("utf-8"))})
    return {"token": token, "logprob": lp, "bytes": list(token.encode("utf-8")), "top_logprobs": tops[:top_k]}


def logprob_indices(behaviour: ModelBehaviour, gen: Generation) -> range:
    """Indices of the generated tokens that ``logprobs.content`` covers [VLLM-CHAT]."""
    if behaviour.style == "vllm_reasoning" and not behaviour.logprobs_include_reasoning:
        return range(gen.n_reasoning, len(gen.tokens))
    return range(len(gen.tokens))


def wants_logprobs(behaviour: ModelBehaviour, request: Mapping[str, Any]) -> int | None:
    """``top_logprobs`` (0 when unset) when log-probs are asked for and supported, else ``None``."""
    if not request.get("logprobs") or not behaviour.logprobs_supported:
        return None
    return int(request.get("top_logprobs") or 0)


# --- payloads --------------------------------------------------------------------------------


def usage_payload(behaviour: ModelBehaviour, request: Mapping[str, Any], gen: Generation) -> dict[str, Any]:
    """``usage`` [OAI-OBJECT]; reasoning tokens are reported only behind a reasoning parser [VLLM-USAGE]."""
    n_prompt, n_completion = prompt_tokens(request), len(gen.tokens)
    usage: dict[str, Any] = {"prompt_tokens": n_prompt, "completion_tokens": n_completion, "total_tokens": n_prompt + n_completion}
    if behaviour.reports_reasoning_tokens:
        reasoning = gen.n_reasoning if behaviour.style == "vllm_reasoning" else 0
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage


def _message(behaviour: ModelBehaviour, gen: Generation) -> dict[str, Any]:
    if behaviour.style != "vllm_reasoning":
        return {"role": "assistant", "content": gen.raw_text}
    reasoning, content = gen.split()  # [VLLM-REASON], [VLLM-QWEN3]
    return {"role": "assistant", "content": content, "reasoning_content": reasoning, "reasoning": reasoning}


def completion_payload(
    behaviour: ModelBehaviour, request: Mapping[str, Any], gen: Generation, *, model: str, completion_id: str
) -> dict[str, Any]:
    """The ``chat.completion`` object of a non-streamed answer [OAI-OBJECT]."""
    top_k = wants_logprobs(behaviour, request)
    logprobs = None
    if top_k is not None:
        logprobs = {"content": [logprob_entry(gen.tokens[i], top_k) for i in logprob_indices(behaviour, gen)], "refusal": None}
    choice = {"index": 0, "message": _message(behaviour, gen), "logprobs": logprobs, "finish_reason": gen.finish_reason}
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [choice],
        "usage": usage_payload(behaviour, request, gen),
    }


def _deltas(behaviour: ModelBehaviour, gen: Generation) -> list[tuple[dict[str, Any], list[int]]]:
    """One delta per token; a token whose delta text is empty (a bare ``<think>``) rides on the next one."""
    pieces: list[tuple[dict[str, Any], list[int]]] = []
    pending: list[int] = []
    for i, token in enumerate(gen.tokens):
        pending.append(i)
        if behaviour.style == "vllm_reasoning" and i < gen.n_reasoning:
            text = token.replace(THINK_START, "").replace(THINK_END, "")  # [VLLM-QWEN3] streaming strips the markers
            delta: dict[str, Any] = {"reasoning_content": text, "reasoning": text}
        else:
            text = token
            delta = {"content": text}
        if text:
            pieces.append((delta, pending))
            pending = []
    if pending:
        if pieces:
            pieces[-1][1].extend(pending)
        else:
            pieces.append(({"content": ""}, pending))
    return pieces


def stream_chunks(
    behaviour: ModelBehaviour, request: Mapping[str, Any], gen: Generation, *, model: str, completion_id: str
) -> Iterator[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a streamed answer [OAI-STREAM], before ``data: [DONE]``.

    A role chunk, one chunk per token (reasoning deltas first for ``vllm_reasoning``), a chunk
    with an empty delta and the ``finish_reason``, then -- when ``stream_options.include_usage``
    is set and the server kind reads it -- the usage chunk with ``choices: []``.
    """
    top_k = wants_logprobs(behaviour, request)
    covered = set(logprob_indices(behaviour, gen))
    include_usage = bool((request.get("stream_options") or {}).get("include_usage")) and behaviour.server_kind != "llama_cpp_python"
    base: dict[str, Any] = {"id": completion_id, "object": "chat.completion.chunk", "created": CREATED, "model": model}
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], logprobs: Any = None, finish_reason: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}]}

    yield chunk({"role": "assistant", "content": ""})
    for delta, indices in _deltas(behaviour, gen):
        entries = [logprob_entry(gen.tokens[i], top_k) for i in indices if i in covered] if top_k is not None else []
        yield chunk(delta, {"content": entries, "refusal": None} if entries else None)
    yield chunk({}, None, gen.finish_reason)
    if include_usage:
        yield {**base, "choices": [], "usage": usage_payload(behaviour, request, gen)}


def models_payload(model_ids: Sequence[str]) -> dict[str, Any]:
    """The ``GET /v1/models`` list object [OAI-MODELS]."""
    return {"object": "list", "data": [{"id": m, "object": "model", "created": CREATED, "owned_by": "wire-server"} for m in model_ids]}
