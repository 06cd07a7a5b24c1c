"""Retrying model calls: what is worth another attempt, how long to wait, and what must stop the run.

Every model call of an auction (bid, jury, refine) and every executor step goes
through the same policy, set per agent in the pool (``max_retries``, ``timeout_s``):

* **retried** with exponential backoff (0.5 s doubling, at most 20 s, with jitter),
  or after exactly the server's ``Retry-After`` / ``retry-after-ms`` when it sends one
  (capped at 60 s): HTTP 408, 409, 429 and 5xx, connection failures and timeouts;
* **fatal**, never retried, stopping the run with an :class:`EndpointError` naming
  the agent and URL: HTTP 401 and 403 (the key), 404 (a wrong ``base_url`` or a
  model name the server does not serve). No other call can succeed after them;
* **failed**, never retried, recorded on the bid or vote that made the call:
  HTTP 400 and 422 (this request was refused, e.g. it is too long for the model).
  :data:`CALL_ERRORS` are the failures a caller records and survives this way.

Each retried failure is reported to ``on_retry`` as one line, so the state and the
CLI show it; the openai client's own retries are off (``max_retries=0``) so none
happens unseen.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import openai
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from sale_graph.errors import EndpointError, PoolError

T = TypeVar("T")
Endpoint = tuple[str, str, str]
"""(agent name, base URL, model): what a fatal error names."""

RETRY_STATUS = frozenset({408, 409, 429})
FATAL_STATUS = frozenset({401, 403, 404})
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 20.0
RETRY_AFTER_MAX_S = 60.0


# Failures of one model call that the auction records and survives (the agent's
# bid or vote is marked failed/missing, visibly); anything else is a bug and raises.
CALL_ERRORS: tuple[type[BaseException], ...] = (
    openai.OpenAIError,  # API errors, and the client's own (a parse cut at its length limit...)
    httpx.HTTPError,
    TimeoutError,
    ConnectionError,
    PoolError,
)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a failed call, when the server answered."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code
    return None


def is_request_shape_rejection(exc: BaseException) -> bool:
    """Whether the server refused the request's ``response_format`` shape: the same request will always fail.

    llama-cpp-python's server answers a ``json_schema`` response format with HTTP 500
    ("Input should be 'text' or 'json_object'"); others answer 400 or 422.
    """
    if status_of(exc) not in (400, 422, 500, 501):
        return False
    text = str(exc).lower()
    return any(word in text for word in ("response_format", "json_schema", "json_object", "input should be", "guided"))


def is_retryable(exc: BaseException) -> bool:
    """Whether another attempt may succeed (rate limits, overload, server errors, network)."""
    status = status_of(exc)
    if status is not None:
        return (status in RETRY_STATUS or status >= 500) and not is_request_shape_rejection(exc)
    return isinstance(exc, openai.APIConnectionError | httpx.TransportError | TimeoutError | ConnectionError)


def is_fatal(exc: BaseException) -> bool:
    """Whether the endpoint will refuse every call: a key, URL or model-name problem."""
    return status_of(exc) in FATAL_STATUS


def retry_after_s(exc: BaseException | None) -> float | None:
    """The server's requested delay (``retry-after-ms`` or ``Retry-After`` in seconds or as a date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(raw) if raw else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed is not None else None


def backoff_s(attempt: int, exc: BaseException | None) -> float:
    """Seconds to wait before attempt ``attempt + 1``: the server's ``Retry-After``, else exponential."""
    asked = retry_after_s(exc)
    if asked is not None:
        return min(asked, RETRY_AFTER_MAX_S)
    base = min(BACKOFF_START_S * 2 ** max(0, attempt - 1), BACKOFF_MAX_S)
    return base * (1 - 0.25 * random.random())


def describe_failure(exc: BaseException) -> str:
    """One line for the record: the HTTP status or the exception type, and the message's first line."""
    status = status_of(exc)
    head = f"HTTP {status}" if status is not None else type(exc).__name__
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{head}: {message}"[:200]


def describe_error(exc: BaseException) -> str:
    """A one-line description of a call failure for the record."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}"[:300]


def endpoint_error(agent_name: str, base_url: str, model: str, exc: BaseException) -> EndpointError:
    """The fatal error for a refused call, naming the agent, the URL and the likely fix."""
    status = status_of(exc)
    hint = {
        401: "the API key is missing or wrong: check api_key_env in the pool file and that the variable is exported",
        403: "the API key may not use this model: check api_key_env and the account's access",
        404: f"the server has no model {model!r} or base_url is wrong: check `sale pool check` and the pool file",
    }.get(status or 0, "check the pool file")
    return EndpointError(f"agent {agent_name!r} at {base_url}: {describe_failure(exc)}; {hint}")


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome is not None else None
    return backoff_s(state.attempt_number, exc)


def _reporter(on_retry: Callable[[str], None] | None) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        source = " (Retry-After)" if retry_after_s(exc) is not None else ""
        line = f"attempt {state.attempt_number} failed: {describe_failure(exc) if exc else '?'}; retried after {wait:.1f} s{source}"
        if on_retry is not None:
            on_retry(line)

    return before_sleep


def _settings(max_retries: int, on_retry: Callable[[str], None] | None) -> dict[str, Any]:
    return {
        "stop": stop_after_attempt(max(0, max_retries) + 1),
        "wait": _wait,
        "retry": retry_if_exception(is_retryable),
        "before_sleep": _reporter(on_retry),
        "reraise": True,
    }


def retrying(max_retries: int, on_retry: Callable[[str], None] | None = None) -> Retrying:
    """A tenacity controller for a blocking call under this policy."""
    return Retrying(**_settings(max_retries, on_retry))


def aretrying(max_retries: int, on_retry: Callable[[str], None] | None = None) -> AsyncRetrying:
    """A tenacity controller for an awaited call under this policy."""
    return AsyncRetrying(**_settings(max_retries, on_retry))


def retries_of(exc: BaseException) -> list[str]:
    """The retried failures that came before a call's final failure (see :func:`call_with_retries`)."""
    return list(exc.__dict__.get("sale_retries", []))


def _failed(exc: Exception, endpoint: Endpoint, retries: list[str] | None) -> Exception:
    """The exception to raise for a call that failed for good: fatal ones named, earlier retries kept on it."""
    if is_fatal(exc):
        return endpoint_error(*endpoint, exc)
    exc.__dict__["sale_retries"] = list(retries or [])
    return exc


def _replaying(first: Exception, call: Callable[[], T]) -> Callable[[], T]:
    """``call`` whose first attempt raises ``first`` (the attempt already made), then calls as usual."""
    pending = [first]

    def attempt() -> T:
        if pending:
            raise pending.pop()
        return call()

    return attempt


def _areplaying(first: Exception, call: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
    """:func:`_replaying` for an awaited call."""
    pending = [first]

    async def attempt() -> T:
        if pending:
            raise pending.pop()
        return await call()

    return attempt


def call_with_retries(call: Callable[[], T], *, max_retries: int, on_retry: Callable[[str], None] | None, endpoint: Endpoint,
                      retries: list[str] | None = None) -> T:
    """Run ``call`` under the retry policy; a fatal refusal becomes an :class:`EndpointError` for ``endpoint``.

    ``retries`` (the list ``on_retry`` appends to, when it is one) is kept on a final
    failure, so the caller can record that the call was retried before it failed.

    The first attempt runs before any retry controller is built (most calls succeed
    at once, and a controller is a few dozen objects that only the garbage collector
    frees); when it fails, the controller starts from that failure as its first attempt.
    """
    try:
        return call()
    except Exception as first:  # noqa: BLE001 - the controller below decides, as for any attempt
        call = _replaying(first, call)
    try:
        for attempt in retrying(max_retries, on_retry):
            with attempt:
                return call()
    except Exception as exc:
        failure = _failed(exc, endpoint, retries)
        if failure is exc:
            raise
        raise failure from exc
    raise AssertionError("unreachable: tenacity re-raises the last failure")  # pragma: no cover


async def acall_with_retries(
    call: Callable[[], Awaitable[T]], *, max_retries: int, on_retry: Callable[[str], None] | None, endpoint: Endpoint,
    retries: list[str] | None = None,
) -> T:
    """Await ``call`` under the retry policy (see :func:`call_with_retries`)."""
    try:
        return await call()
    except Exception as first:  # noqa: BLE001 - the controller below decides, as for any attempt
        call = _areplaying(first, call)
    try:
        async for attempt in aretrying(max_retries, on_retry):
            with attempt:
                return await call()
    except Exception as exc:
        failure = _failed(exc, endpoint, retries)
        if failure is exc:
            raise
        raise failure from exc
    raise AssertionError("unreachable: tenacity re-raises the last failure")  # pragma: no cover
