"""The chat model every agent uses: ``ChatOpenAI`` that keeps the endpoint's separated reasoning.

``langchain_openai.ChatOpenAI`` follows OpenAI's own API and drops fields that other
OpenAI-compatible servers add. vLLM with a reasoning parser (``--reasoning-parser
qwen3``) returns the model's thinking in ``message.reasoning_content`` (newer vLLM
also as ``message.reasoning``; in streams as ``delta.reasoning_content``), apart
from the visible ``content``. SALE needs it kept apart: a bid is the *visible*
strategy, while the ledger bills every generated token. :class:`SaleChatOpenAI`
copies that text into ``additional_kwargs["reasoning_content"]`` of the message
(streamed chunks concatenate), so :mod:`sale_graph.llm.reasoning` can read it.

Two costs of every call are cut, with the request and the result unchanged: the
messages and tools skip the SDK's request transform (:meth:`SaleChatOpenAI._get_request_payload`),
and an awaited plain completion builds its result on the event loop instead of in a
worker thread (:meth:`SaleChatOpenAI._agenerate`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from langchain_openai.chat_models import base as _openai_base
from openai.types.chat import ChatCompletion

from sale_graph.llm.sdk_request import apost_chat_completion, chat_completion_request, post_chat_completion

REASONING_KEY = "reasoning_content"
_WIRE_FIELDS = ("reasoning_content", "reasoning")  # vLLM's names, old and new
_SENT_AS_IS = ("messages", "tools")  # the request's bulk, which the SDK's transform walks for nothing
# How langchain_openai maps an SDK error and reads gateway headers; without them (another version) the fast path is off.
_BAD_REQUEST = getattr(_openai_base, "_handle_openai_bad_request", None)
_API_ERROR = getattr(_openai_base, "_handle_openai_api_error", None)
_GATEWAY_METADATA = getattr(_openai_base, "_add_gateway_metadata", None)


def _reasoning_of(payload: Mapping[str, Any] | openai.BaseModel | None) -> str:
    """The separated reasoning text of a response message or stream delta ("" when none).

    A message the SDK parsed keeps the server's extra fields as attributes, so they are
    read there, without dumping the whole response a second time.
    """
    if not payload:
        return ""
    for name in _WIRE_FIELDS:
        value = payload.get(name) if isinstance(payload, Mapping) else getattr(payload, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


def _sent_as_extra_body(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with its messages and tools moved into ``extra_body`` (see ``SaleChatOpenAI._get_request_payload``)."""
    if "messages" not in payload or "response_format" in payload:
        return payload
    moved = {key: payload[key] for key in _SENT_AS_IS if key in payload}
    payload["extra_body"] = {**moved, **(payload.get("extra_body") or {})}
    for key in moved:  # an empty list keeps the key's place in the body; extra_body's value replaces it there
        payload[key] = []
    return payload


class _Raised:
    """The raw response of a call, once there is one (for :func:`_openai_errors`)."""

    raw: Any = None


@contextlib.contextmanager
def _openai_errors() -> Iterator[_Raised]:
    """Maps the SDK's errors as ``ChatOpenAI`` does: a bad request or API error through its handlers, others with the response."""
    raised = _Raised()
    try:
        yield raised
    except openai.BadRequestError as e:
        _BAD_REQUEST(e)  # type: ignore[misc]  # checked by SaleChatOpenAI._fast_path
        raise
    except openai.APIError as e:
        _API_ERROR(e)  # type: ignore[misc]  # checked by SaleChatOpenAI._fast_path
        raise
    except Exception as e:
        if raised.raw is not None and hasattr(raised.raw, "http_response"):
            e.response = raised.raw.http_response  # type: ignore[attr-defined]  # as ChatOpenAI does
        raise


def _parsed(raw_response: Any) -> Any:
    """The ``ChatCompletion`` of a raw response, validated from its JSON in one step when it conforms.

    ``raw_response.parse()`` builds the SDK's model field by field in Python (lenient:
    it takes whatever the server sent); pydantic's validator builds the same model from
    the JSON in compiled code. A body it rejects (a server that strays from the schema,
    an HTML error page) goes through ``parse()``, as before.
    """
    http_response = raw_response.http_response
    if "json" in http_response.headers.get("content-type", ""):
        try:
            return ChatCompletion.model_validate_json(http_response.content)
        except ValueError:  # pydantic's ValidationError is one
            pass
    return raw_response.parse()


def _messages_of(response: dict[str, Any] | openai.BaseModel) -> list[Any]:
    """The ``message`` of each choice, as the response holds it (a dict or the SDK's model)."""
    if isinstance(response, dict):
        return [(choice or {}).get("message") for choice in response.get("choices") or []]
    return [getattr(choice, "message", None) for choice in getattr(response, "choices", None) or []]


class SaleChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` that keeps a server's separated reasoning (``reasoning_content``/``reasoning``).

    The reasoning lands in ``message.additional_kwargs["reasoning_content"]``; the
    message's ``content`` stays the visible answer.
    """

    def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        """``ChatOpenAI``'s payload, with the messages and tools sent through ``extra_body``.

        The SDK walks every request argument against its ``TypedDict`` types before
        sending it, to rename aliased keys and format dates and files; the chat
        completion types declare none, so the walk returns the messages unchanged, at
        about 1.2 ms of CPU a call (a quarter of an auction call's client cost).
        ``extra_body`` goes out as is, merged over the same keys, so the request's
        bytes are the same. The structured-output ``parse`` path (a ``response_format``
        argument) is left as it is. A plain completion skips the walk altogether
        (:meth:`_send_plain`); this covers ``ChatOpenAI``'s other paths (streams).
        """
        return _sent_as_extra_body(super()._get_request_payload(input_, stop=stop, **kwargs))

    def _fast_path(self, payload: dict[str, Any]) -> bool:
        """Whether a plain completion with ``payload`` may skip ``ChatOpenAI``'s own request path."""
        return not (_BAD_REQUEST is None or _API_ERROR is None or _GATEWAY_METADATA is None or self.include_response_headers
                    or "response_format" in payload or self._use_responses_api(payload))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """``ChatOpenAI._generate``, with a plain chat completion posted without the SDK's argument walk (see :meth:`_agenerate`)."""
        self._ensure_sync_client_available()
        payload = ChatOpenAI._get_request_payload(self, messages, stop=stop, **kwargs)
        if not self._fast_path(payload):
            return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        request = chat_completion_request(payload)
        with _openai_errors() as raised:
            if request is None:
                raised.raw = self.client.with_raw_response.create(**_sent_as_extra_body(payload))
            else:
                raised.raw = post_chat_completion(self.root_client, *request)
            response = _parsed(raised.raw)
        return self._result_of(response, raised.raw)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """``ChatOpenAI._agenerate``, with a plain chat completion sent and read on the event loop, cheaper.

        Two costs go: ``ChatOpenAI`` hands the building of every awaited result (a few
        tens of microseconds of work) to a worker thread, and the hop costs more than the
        work; and the SDK's ``create`` walks every argument against its types before
        posting (:mod:`sale_graph.llm.sdk_request` posts the same request without it).
        The call's own path is otherwise the same (the request, the SDK's error mapping,
        gateway metadata). Structured-output, Responses API and header-keeping calls go
        through ``ChatOpenAI``'s own path.
        """
        payload = ChatOpenAI._get_request_payload(self, messages, stop=stop, **kwargs)
        if not self._fast_path(payload):
            return await super()._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)
        request = chat_completion_request(payload)
        with _openai_errors() as raised:
            if request is None:
                raised.raw = await self.async_client.with_raw_response.create(**_sent_as_extra_body(payload))
            else:
                raised.raw = await apost_chat_completion(self.root_async_client, *request)
            response = _parsed(raised.raw)
        return self._result_of(response, raised.raw)

    def _result_of(self, response: Any, raw_response: Any) -> ChatResult:
        generation_info: dict[str, Any] = {}
        _GATEWAY_METADATA(generation_info, raw_response)  # type: ignore[misc]  # checked by _fast_path
        return self._create_chat_result(response, generation_info)

    def _create_chat_result(self, response: dict[str, Any] | openai.BaseModel, generation_info: dict[str, Any] | None = None) -> ChatResult:
        result = super()._create_chat_result(response, generation_info)
        for generation, message in zip(result.generations, _messages_of(response), strict=False):
            reasoning = _reasoning_of(message)
            if reasoning and isinstance(generation.message, AIMessage):
                generation.message.additional_kwargs[REASONING_KEY] = reasoning
        return result

    def _convert_chunk_to_generation_chunk(
        self, chunk: dict[str, Any], default_chunk_class: type, base_generation_info: dict[str, Any] | None
    ) -> ChatGenerationChunk | None:
        generation = super()._convert_chunk_to_generation_chunk(chunk, default_chunk_class, base_generation_info)
        choices = chunk.get("choices") or []
        if generation is not None and choices:
            reasoning = _reasoning_of(choices[0].get("delta"))
            if reasoning and isinstance(generation.message, AIMessageChunk):
                generation.message.additional_kwargs[REASONING_KEY] = reasoning
        return generation
