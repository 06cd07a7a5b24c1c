"""Reading a chat completions request: the body under its size limit, each field checked, the gateway's own fields apart.

The body is OpenAI's ``POST /v1/chat/completions`` request. The gateway reads
``model``, ``messages``, ``stream``, ``stream_options``, ``n``, ``user`` and ``tools``,
checks the types of the fields it passes through (``temperature``, ``max_tokens``,
``max_completion_tokens``, ``stop``, ``tools``, ``tool_choice``, ``response_format``),
and takes out its own field ``sale``: per-request auction settings, e.g.
``{"sale": {"jury_mode": "batched"}}`` (``extra_body`` in the ``openai`` SDK). Every
refusal is a 400 naming the field (``param``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from sale_graph.errors import unknown_keys_message
from sale_graph.integrations._route_settings import CONTEXT_KEYS
from sale_graph.integrations.gateway.errors import GatewayError, bad_request

SALE_MODEL = "sale"
"""The model name that runs the auction."""
SESSION_HEADER = "x-sale-session"
RETRY_HEADER = "x-stainless-retry-count"
"""How many times the ``openai`` SDKs (Python and Node, so LangChain's ``ChatOpenAI`` too) have sent this request before."""
SALE_FIELD = "sale"
"""The request field that carries per-request auction settings (taken out before forwarding)."""

PER_REQUEST_OPTIONS: tuple[str, ...] = (
    "jury_mode", "jury_quorum", "allow_degraded", "bid_max_tokens", "jury_max_tokens", "conversation_max_tokens",
    "max_concurrency", "refine", "refine_k", "refine_min_similarity", "refine_max_pairs", "refine_graded",
    "use_memory", "on_execution_error",
)
"""The :class:`~sale_graph.context.SaleContext` settings a request may set in its ``sale`` field.

The others (the pool, the weights, where the memory lives...) belong to whoever runs the gateway."""

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MAX_SESSION_CHARS = 256
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass
class ChatRequest:
    """A checked chat completions request.

    Attributes:
        body: the client's JSON, without the gateway's own ``sale`` field: what is forwarded.
        model: ``sale`` or a pool agent's name.
        messages: the conversation.
        stream: whether the answer is streamed (SSE).
        include_usage: whether the client asked for the usage chunk (``stream_options.include_usage``).
        session: the session id (the ``x-sale-session`` header, else ``user``), or ``None``.
        options: per-request auction settings (the ``sale`` field).
        tool_names: the names of the tools the client offers.
        retry: how many times the client sent this request before (the ``openai`` SDKs'
            ``x-stainless-retry-count``; 0 when not said).
    """

    body: dict[str, Any]
    model: str
    messages: list[dict[str, Any]]
    stream: bool = False
    include_usage: bool = False
    session: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    tool_names: list[str] = field(default_factory=list)
    retry: int = 0

    @property
    def last_role(self) -> str:
        """The role of the last message (``user`` for a new human turn)."""
        return str(self.messages[-1].get("role"))


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request's body, refused with a 413 as soon as it is over ``max_bytes``.

    Raises:
        GatewayError: 413 ``request_too_large``.
    """
    too_large = GatewayError(413, f"the request body is over this gateway's limit of {max_bytes} bytes",
                             code="request_too_large")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _check_type(body: Mapping[str, Any], name: str, types: tuple[type, ...], what: str) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise bad_request(f"'{name}' must be {what}, got {json.dumps(value)[:80]}", name)


def _check_messages(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise bad_request("'messages' must be a non-empty array of chat messages", "messages")
    for i, message in enumerate(raw):
        if not isinstance(message, dict):
            raise bad_request(f"messages[{i}] must be an object with a 'role'", f"messages[{i}]")
        if message.get("role") not in ROLES:
            raise bad_request(f"messages[{i}].role must be one of {', '.join(ROLES)}, got {message.get('role')!r}",
                              f"messages[{i}].role")
    return raw


def _check_options(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad_request(f"'{SALE_FIELD}' must be an object of auction settings", SALE_FIELD)
    unknown = [k for k in raw if k not in CONTEXT_KEYS]
    if unknown:
        message = unknown_keys_message(unknown, PER_REQUEST_OPTIONS, f"'{SALE_FIELD}' option")
        raise bad_request(message, f"{SALE_FIELD}.{sorted(unknown)[0]}", "unknown_sale_option")
    fixed = [k for k in raw if k not in PER_REQUEST_OPTIONS]
    if fixed:
        raise bad_request(f"'{SALE_FIELD}.{fixed[0]}' is set by whoever runs the gateway, not per request; a request may set "
                          f"{', '.join(PER_REQUEST_OPTIONS)}", f"{SALE_FIELD}.{fixed[0]}", "unknown_sale_option")
    return dict(raw)


def _tool_names(tools: Any) -> list[str]:
    if tools is None:
        return []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise bad_request("'tools' must be an array of tool objects", "tools")
    names = []
    for i, tool in enumerate(tools):
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise bad_request(f"tools[{i}] must be {{'type': 'function', 'function': {{'name': ...}}}}", f"tools[{i}].function.name")
        names.append(function["name"])
    return names


def _session(headers: Mapping[str, str], user: Any) -> str | None:
    raw = headers.get(SESSION_HEADER)
    if raw is not None and raw.strip():
        session, param = raw.strip(), SESSION_HEADER
    elif isinstance(user, str) and user.strip():
        session, param = user.strip(), "user"
    else:
        return None
    if len(session) > MAX_SESSION_CHARS:
        raise bad_request(f"the session id is longer than {MAX_SESSION_CHARS} characters", param)
    return session


def parse_chat(raw: bytes, headers: Mapping[str, str], models: Collection[str]) -> ChatRequest:
    """Check a chat completions body and take the gateway's own fields out of it.

    Args:
        raw: the request body.
        headers: the request headers (lower-case names), for the session header.
        models: the model names served (``sale`` and the pool agents' names).

    Raises:
        GatewayError: a 400 naming the field at fault.
    """
    body = json_object(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request(f"'model' is required: '{SALE_MODEL}' for the auction, or a pool agent by name", "model")
    if model not in models:
        raise bad_request(f"the model {model!r} is not served here; use {', '.join(map(repr, models))}", "model",
                          "model_not_found")
    messages = _check_messages(body.get("messages"))
    _check_type(body, "stream", (bool,), "true or false")
    _check_type(body, "stream_options", (dict,), "an object")
    _check_type(body, "temperature", (int, float), "a number")
    _check_type(body, "max_tokens", (int,), "a positive integer")
    _check_type(body, "max_completion_tokens", (int,), "a positive integer")
    _check_type(body, "stop", (str, list), "a string or an array of strings")
    _check_type(body, "tool_choice", (str, dict), "a string or an object")
    _check_type(body, "response_format", (dict,), "an object")
    _check_type(body, "user", (str,), "a string")
    for name in ("max_tokens", "max_completion_tokens"):
        if body.get(name) is not None and body[name] < 1:
            raise bad_request(f"'{name}' must be a positive integer, got {body[name]}", name)
    n = body.get("n")
    if n is not None and (isinstance(n, bool) or n != 1):
        raise bad_request(f"the SALE gateway answers one choice per request: 'n' must be 1, got {json.dumps(n)}", "n")
    tool_names = _tool_names(body.get("tools"))
    options = _check_options(body.pop(SALE_FIELD, None))
    stream = bool(body.get("stream"))
    include_usage = stream and bool((body.get("stream_options") or {}).get("include_usage"))
    return ChatRequest(body=body, model=model, messages=messages, stream=stream, include_usage=include_usage,
                       session=_session(headers, body.get("user")), options=options, tool_names=tool_names,
                       retry=_retry_count(headers))


def _retry_count(headers: Mapping[str, str]) -> int:
    """The client's retry count (a header of its SDK's making, so a malformed one is read as 0, not refused)."""
    value = headers.get(RETRY_HEADER, "0").strip()
    return int(value) if value.isdigit() else 0


__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "PER_REQUEST_OPTIONS",
    "RETRY_HEADER",
    "SALE_FIELD",
    "SALE_MODEL",
    "SESSION_HEADER",
    "ChatRequest",
    "parse_chat",
    "read_body",
]


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object, or the 400 that says it is not one."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}", None, "invalid_json") from exc
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object", None, "invalid_json")
    return body
