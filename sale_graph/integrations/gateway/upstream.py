"""Forwarding a request to an agent's endpoint: the JSON in, the answer (or the stream's bytes) out.

No chat-model layer sits in between: the client's request body is sent on with the
agent's model name, its token cap under the field its server reads, the pool's request
fields for execution (``extra_body`` and ``execute_extra_body``, under the client's own
fields) and, for an auction's winner, the winning strategy in the system message. A
streamed answer is passed on event by event, as the endpoint wrote it.

Each attempt holds a slot of the endpoint's concurrency bound (the agent's
``max_concurrency``, or this worker's share of it, shared with the auctions of this process:
:mod:`sale_graph.llm.limits`),
a stream for as long as it runs; failures are retried by the agent's policy
(:mod:`sale_graph.llm.retries`: 408/409/429/5xx and network errors, ``Retry-After``
honoured), each retry recorded. What fails for good is an :class:`UpstreamFailure`,
its message stripped of every key (:class:`~sale_graph.integrations.gateway.keys.Redactor`).

The requests go out through ``httpx2`` when it is installed (the HTTP library of the
``openai`` SDK since its version 3, an API-identical fork of ``httpx``): its connection
pool assigns a request in one pass over its connections, where ``httpx``'s (httpcore 1.0)
rescans every connection for each idle one, which at 100 concurrent forwards more than
doubled the gateway's CPU per request. Its transport failures reach the retry policy as
the ``httpx`` errors of the same name (:func:`retry_error`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx  # the errors the retry policy (sale_graph.llm.retries) reads

if TYPE_CHECKING:  # httpx2 mirrors httpx's API: the types are checked against httpx
    import httpx as http
else:
    try:
        import httpx2 as http
    except ImportError:  # pragma: no cover - an openai SDK before version 3 brings httpx only
        import httpx as http

from sale_graph.errors import EndpointError
from sale_graph.integrations.gateway.keys import Redactor
from sale_graph.integrations.gateway.metrics import GatewayMetrics
from sale_graph.integrations.gateway.request import ChatRequest
from sale_graph.integrations.middleware import STRATEGY_PROMPT
from sale_graph.llm import acall_with_retries, describe_failure, endpoint_limiter, ledger_entry, status_of
from sale_graph.llm.retries import retry_after_s
from sale_graph.pool import AgentSpec
from sale_graph.state import UsageEntry

_USAGE = re.compile(rb'"usage"\s*:\s*\{')
_SYSTEM_ROLES = ("system", "developer")
CONNECT_TIMEOUT_S = 10.0


class UpstreamFailure(Exception):
    """An agent's endpoint failed for good (after its retries).

    Attributes:
        agent: the agent whose endpoint failed.
        status: the HTTP status it answered last (``None``: no answer, e.g. a network error).
        message: what happened, with no key in it.
        retry_after: the endpoint's ``Retry-After`` in seconds, when it sent one.
        retries: the retried failures before the last one.
    """

    def __init__(self, agent: AgentSpec, status: int | None, message: str, retry_after: float | None = None,
                 retries: list[str] | None = None) -> None:
        super().__init__(message)
        self.agent = agent
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.retries = list(retries or [])


@dataclass
class Reply:
    """A non-streamed answer: the endpoint's JSON, its ledger line and the retries it took."""

    body: dict[str, Any]
    usage: UsageEntry
    retries: list[str] = field(default_factory=list)


def _merge_under(defaults: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """``body`` over ``defaults``, nested objects merged key by key (the client's values win)."""
    out = dict(defaults)
    for key, value in body.items():
        out[key] = _merge_under(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def with_strategy(messages: list[dict[str, Any]], note: str) -> list[dict[str, Any]]:
    """``messages`` with ``note`` at the end of the leading system message, or in a new one before the others."""
    first = messages[0] if messages else None
    if first is not None and first.get("role") in _SYSTEM_ROLES:
        content = first.get("content")
        if isinstance(content, str) or content is None:
            merged: Any = f"{content}\n\n{note}" if content else note
        elif isinstance(content, list):
            merged = [*content, {"type": "text", "text": f"\n\n{note}"}]
        else:
            merged = content
        return [{**first, "content": merged}, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]


def request_body(agent: AgentSpec, chat: ChatRequest, strategy: str | None) -> dict[str, Any]:
    """The body sent to ``agent``'s endpoint for ``chat``.

    The client's fields pass through; the model is the agent's; the pool's request
    fields for execution go under the client's own; the token cap (the client's
    ``max_completion_tokens`` or ``max_tokens``, at most the agent's ``max_tokens``) is
    sent under the agent's ``token_limit_field``; a stream asks for its usage chunk (the
    gateway counts the tokens; it drops the chunk again when the client did not ask for it);
    ``strategy`` (an auction's winner) joins the system message.
    """
    body = _merge_under(agent.request_fields("execute"), chat.body)
    body["model"] = agent.model
    asked = [body.pop(name) for name in ("max_completion_tokens", "max_tokens") if body.get(name) is not None]
    caps = [c for c in (asked[0] if asked else None, agent.max_tokens) if c is not None]
    if caps:
        body[agent.token_limit_field] = int(min(caps))
    if chat.stream:
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    if strategy is not None:
        body["messages"] = with_strategy(chat.messages, STRATEGY_PROMPT.format(agent=agent.name, strategy=strategy))
    return body


def retry_error(exc: Exception) -> Exception:
    """A transport failure of the HTTP library as the ``httpx`` error of the same name, which the retry policy retries."""
    if http is httpx or not isinstance(exc, http.TransportError):
        return exc
    kind = getattr(httpx, type(exc).__name__, None)
    if not (isinstance(kind, type) and issubclass(kind, httpx.TransportError)):
        kind = httpx.TransportError
    return kind(str(exc) or type(exc).__name__)


def _error_text(response: http.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300] or response.reason_phrase
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
    return " ".join(str(message or data).split())[:300]


def usage_line(agent: AgentSpec, usage: Any, seconds: float) -> UsageEntry:
    """The ledger line (phase ``execute``) of an answer whose ``usage`` the endpoint reported (zeros, marked estimated, if not)."""
    usage = usage if isinstance(usage, dict) else {}
    n_in, n_out = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return ledger_entry("execute", agent, n_in, n_out, seconds, usage_reported=bool(n_in or n_out))


class Upstream:
    """Sends requests to the pool's endpoints over one shared HTTP client (keep-alive connections).

    Args:
        redact: removes keys from every message.
        metrics: where upstream latency goes.
    """

    def __init__(self, redact: Redactor, metrics: GatewayMetrics) -> None:
        self.redact = redact
        self.metrics = metrics
        self._client: http.AsyncClient | None = None

    @property
    def client(self) -> http.AsyncClient:
        """The HTTP client, created on first use (in the running event loop)."""
        if self._client is None or self._client.is_closed:
            limits = http.Limits(max_connections=None, max_keepalive_connections=256, keepalive_expiry=30.0)
            self._client = http.AsyncClient(limits=limits, timeout=http.Timeout(120.0, connect=CONNECT_TIMEOUT_S))
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client's connections."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _request(self, agent: AgentSpec, body: dict[str, Any]) -> http.Request:
        timeout = http.Timeout(agent.timeout_s, connect=min(CONNECT_TIMEOUT_S, agent.timeout_s), pool=None)
        headers = {"Authorization": f"Bearer {agent.api_key()}", "Content-Type": "application/json",
                   "Accept": "text/event-stream" if body.get("stream") else "application/json"}
        return self.client.build_request("POST", agent.base_url.rstrip("/") + "/chat/completions",
                                         content=json.dumps(body, separators=(",", ":")).encode(), headers=headers,
                                         timeout=timeout)

    def _status_error(self, response: http.Response) -> httpx.HTTPStatusError:
        message = self.redact(_error_text(response))
        return httpx.HTTPStatusError(message, request=response.request, response=response)  # read by the retry policy

    def _failure(self, agent: AgentSpec, exc: Exception, retries: list[str]) -> UpstreamFailure:
        cause = exc.__cause__ if isinstance(exc, EndpointError) and isinstance(exc.__cause__, Exception) else exc
        text = str(exc) if isinstance(exc, EndpointError) else f"agent {agent.name!r} at {agent.base_url}: {describe_failure(exc)}"
        return UpstreamFailure(agent, status_of(cause), self.redact(" ".join(text.split())), retry_after_s(cause), retries)

    async def complete(self, agent: AgentSpec, body: dict[str, Any]) -> Reply:
        """Send a non-streamed request; its JSON answer and ledger line.

        Raises:
            UpstreamFailure: the endpoint failed after its retries, or answered something that is not JSON.
        """
        limiter, retries = endpoint_limiter(agent), list[str]()
        start = time.perf_counter()

        async def once() -> http.Response:
            async with limiter.ahold():
                try:
                    response = await self.client.send(self._request(agent, body))
                except http.TransportError as exc:
                    raise retry_error(exc) from exc
            if response.status_code >= 400:
                raise self._status_error(response)
            return response

        try:
            response = await acall_with_retries(once, max_retries=agent.max_retries, on_retry=retries.append,
                                                endpoint=(agent.name, agent.base_url, agent.model), retries=retries)
        except (httpx.HTTPError, http.HTTPError, EndpointError, TimeoutError, ConnectionError) as exc:
            raise self._failure(agent, exc, retries) from exc
        finally:
            self.metrics.upstream_seconds.labels(agent.name).observe(time.perf_counter() - start)
        try:
            data = response.json()
        except ValueError as exc:
            raise UpstreamFailure(agent, response.status_code, f"agent {agent.name!r} at {agent.base_url} answered "
                                  f"something that is not JSON: {self.redact(response.text[:200])!r}", retries=retries) from exc
        if not isinstance(data, dict):
            raise UpstreamFailure(agent, response.status_code, f"agent {agent.name!r} answered JSON that is not an object",
                                  retries=retries)
        return Reply(body=data, usage=usage_line(agent, data.get("usage"), time.perf_counter() - start), retries=retries)

    async def open_stream(self, agent: AgentSpec, body: dict[str, Any], *, keep_usage: bool) -> UpstreamStream:
        """Start a streamed request: retried until the endpoint answers 200, then its events are read by the caller.

        Args:
            agent: whose endpoint.
            body: the request (``stream: true``).
            keep_usage: pass the usage chunk on (the client asked for it); else it is read and dropped.

        Raises:
            UpstreamFailure: the endpoint failed after its retries.
        """
        limiter, retries = endpoint_limiter(agent), list[str]()
        start = time.perf_counter()

        async def once() -> http.Response:
            await limiter.aacquire()
            try:
                response = await self.client.send(self._request(agent, body), stream=True)
            except BaseException as exc:
                limiter.release()
                if isinstance(exc, http.TransportError):
                    raise retry_error(exc) from exc
                raise
            if response.status_code < 400:
                return response  # the slot is held until the stream is closed
            try:
                await response.aread()
            except http.TransportError as exc:
                raise retry_error(exc) from exc
            finally:
                await response.aclose()
                limiter.release()
            raise self._status_error(response)

        try:
            response = await acall_with_retries(once, max_retries=agent.max_retries, on_retry=retries.append,
                                                endpoint=(agent.name, agent.base_url, agent.model), retries=retries)
        except (httpx.HTTPError, http.HTTPError, EndpointError, TimeoutError, ConnectionError) as exc:
            self.metrics.upstream_seconds.labels(agent.name).observe(time.perf_counter() - start)
            raise self._failure(agent, exc, retries) from exc
        return UpstreamStream(self, agent, response, limiter.release, start, keep_usage=keep_usage, retries=retries)


class UpstreamStream:
    """An endpoint's open SSE answer, read event by event; :meth:`aclose` ends it and frees the endpoint's slot.

    Attributes:
        usage: the ledger line, once the usage chunk went by (``None`` before, or when the endpoint sent none).
        failure: what broke the stream after it started, if something did.
    """

    def __init__(self, upstream: Upstream, agent: AgentSpec, response: http.Response, release: Callable[[], None],
                 start: float, *, keep_usage: bool, retries: list[str]) -> None:
        self.agent = agent
        self.retries = retries
        self.usage: UsageEntry | None = None
        self.failure: str | None = None
        self._upstream = upstream
        self._response = response
        self._release: Callable[[], None] | None = release
        self._start = start
        self._keep_usage = keep_usage

    async def aclose(self) -> None:
        """Close the endpoint's response (cancelling its request if it still runs) and free the slot; idempotent."""
        release, self._release = self._release, None
        if release is None:
            return
        try:
            await self._response.aclose()
        finally:
            release()
            self._upstream.metrics.upstream_seconds.labels(self.agent.name).observe(time.perf_counter() - self._start)

    def _usage_event(self, event: bytes) -> bytes | None:
        """Read the usage of an event carrying one; the event to pass on (``None``: drop it)."""
        data = event.partition(b"data:")[2].strip()
        try:
            chunk = json.loads(data)
        except ValueError:
            return event
        if not isinstance(chunk, dict):
            return event
        self.usage = usage_line(self.agent, chunk.get("usage"), time.perf_counter() - self._start)
        if self._keep_usage:
            return event
        if not chunk.get("choices"):
            return None
        return b"data: " + json.dumps({**chunk, "usage": None}, separators=(",", ":")).encode() + b"\n\n"

    async def events(self) -> AsyncIterator[bytes]:
        """The endpoint's SSE events, whole (``data: ...`` and a blank line), as it sent them; closes the stream at the end.

        A failure after the stream began (the connection dropped, a timeout) ends it with an
        OpenAI-shaped ``data: {"error": ...}`` event, which the ``openai`` SDK raises as an ``APIError``.
        """
        buffer = b""
        try:
            async for chunk in self._response.aiter_bytes():
                buffer += chunk
                if b"\r" in buffer:
                    buffer = buffer.replace(b"\r\n", b"\n")
                while (end := buffer.find(b"\n\n")) >= 0:
                    event, buffer = buffer[: end + 2], buffer[end + 2 :]
                    out = self._usage_event(event) if _USAGE.search(event) else event
                    if out is not None:
                        yield out
            if buffer.strip():
                yield buffer.rstrip(b"\n") + b"\n\n"
        except (httpx.HTTPError, http.HTTPError) as exc:
            self.failure = self._upstream.redact(f"agent {self.agent.name!r} at {self.agent.base_url}: "
                                                 f"the stream broke: {describe_failure(exc)}")
            error = {"error": {"message": self.failure, "type": "server_error", "code": "upstream_error", "param": None}}
            yield b"data: " + json.dumps(error).encode() + b"\n\n"
        finally:
            await self.aclose()


__all__ = ["Reply", "Upstream", "UpstreamFailure", "UpstreamStream", "request_body", "retry_error", "usage_line", "with_strategy"]
