"""A plain chat completion sent through the openai SDK's client, without its per-call argument transform.

``client.chat.completions.create(**payload)`` walks every request argument against the
SDK's ``TypedDict`` annotations before it sends anything (``async_maybe_transform``): it
renames aliased keys and formats dates and files, which no chat completion field has,
and every call hashes the annotations again (the ``model`` field's ``Literal`` of every
OpenAI model name among them). With 40 auctions in flight that walk was a tenth of an
auction call's client CPU, even with the messages and tools moved out of its way.

:func:`chat_completion_request` builds what ``create`` hands to the client's ``post``
(the body in ``create``'s own key order, the request options, ``with_raw_response``'s
header), and :func:`apost_chat_completion` / :func:`post_chat_completion` post it: the
client's own request path follows (headers, authentication, timeout, the SDK's retries,
its error classes), so the request on the wire is the one ``create`` sends; the client
builds it from a template of its earlier requests (:mod:`sale_graph.llm.request_template`). The key
order is learned from ``create`` itself, once per set of payload keys, by running it on
a client that only records the body; when that fails (another SDK version, an argument
``create`` does not take) the callers go through ``create`` as before.
"""

from __future__ import annotations

import threading
from typing import Any, cast

import openai
from openai.types.chat import ChatCompletion

from sale_graph.llm.request_template import template_requests

try:  # the SDK's own request plumbing: without it (another SDK version) there is no fast path
    from openai._base_client import make_request_options
    from openai._constants import RAW_RESPONSE_HEADER
    from openai._legacy_response import LegacyAPIResponse
    from openai.resources.chat.completions import Completions

    _PLUMBING = True
except ImportError:  # pragma: no cover - depends on the installed SDK
    _PLUMBING = False

#: ``create``'s arguments that are request options, not body fields.
_OPTION_KEYS = ("extra_headers", "extra_query", "extra_body", "timeout")
_orders: dict[tuple[str, ...], tuple[str, ...] | None] = {}
_orders_lock = threading.Lock()


class _BodyRecorder:
    """Stands in for the SDK client under a ``Completions`` resource: ``post`` keeps the body it gets."""

    def __init__(self) -> None:
        self.body: dict[str, Any] | None = None

    def post(self, path: str, *, body: dict[str, Any] | None = None, **kwargs: Any) -> None:  # noqa: ARG002 - the signature of the client's post
        """Record ``body``; nothing is sent."""
        self.body = body

    get = patch = put = delete = get_api_list = post


def _learn_order(keys: tuple[str, ...]) -> tuple[str, ...] | None:
    """The body keys, in the order ``create`` writes them, of a payload with ``keys``; ``None`` when it cannot tell."""
    recorder = _BodyRecorder()
    probe: dict[str, Any] = {key: None for key in keys if key not in _OPTION_KEYS}
    probe.update(messages=[], model="")
    try:
        create: Any = Completions(cast(Any, recorder)).create  # a recorder in place of the client
        create(**probe)
    except Exception:  # noqa: BLE001 - any failure means: go through create, which raises it for the caller
        return None
    body = recorder.body
    if not isinstance(body, dict) or set(body) != {k for k in keys if k not in _OPTION_KEYS} | {"messages", "model"}:
        return None  # the body holds other keys than the payload's: create does more than order them
    return tuple(body)


def body_order(keys: tuple[str, ...]) -> tuple[str, ...] | None:
    """The body's key order for a payload with ``keys`` (learned once per key set), or ``None``: use ``create``."""
    if not _PLUMBING or "messages" not in keys or "model" not in keys or "response_format" in keys:
        return None
    with _orders_lock:
        if keys in _orders:
            return _orders[keys]
    order = _learn_order(keys)
    with _orders_lock:
        _orders[keys] = order
    return order


def chat_completion_request(payload: dict[str, Any]) -> tuple[dict[str, Any], Any] | None:
    """The body and request options ``create(**payload)`` would post, or ``None`` when only ``create`` can say.

    Args:
        payload: ``ChatOpenAI``'s request payload for a plain, non-streamed chat completion.

    Returns:
        ``(body, options)`` for the client's ``post``, the options carrying
        ``with_raw_response``'s header so the answer comes back as a ``LegacyAPIResponse``.
    """
    if payload.get("stream"):
        return None
    order = body_order(tuple(payload))
    if order is None:
        return None
    body = {key: payload[key] for key in order}
    extra_headers = {**(payload.get("extra_headers") or {}), RAW_RESPONSE_HEADER: "true"}
    options = make_request_options(extra_headers=extra_headers, extra_query=payload.get("extra_query"),
                                   extra_body=payload.get("extra_body"), timeout=payload.get("timeout", openai.not_given),
                                   security={"bearer_auth": True})
    return body, options


async def apost_chat_completion(client: openai.AsyncOpenAI, body: dict[str, Any], options: Any) -> LegacyAPIResponse[ChatCompletion]:
    """Post a request of :func:`chat_completion_request` with the async client; the raw response, as ``with_raw_response`` gives it."""
    post: Any = template_requests(client).post  # with with_raw_response's header in the options, post returns the raw response
    return cast("LegacyAPIResponse[ChatCompletion]", await post("/chat/completions", body=body, options=options,
                                                              cast_to=ChatCompletion, stream=False))


def post_chat_completion(client: openai.OpenAI, body: dict[str, Any], options: Any) -> LegacyAPIResponse[ChatCompletion]:
    """Post a request of :func:`chat_completion_request` with the blocking client."""
    post: Any = template_requests(client).post
    return cast("LegacyAPIResponse[ChatCompletion]", post("/chat/completions", body=body, options=options,
                                                        cast_to=ChatCompletion, stream=False))
