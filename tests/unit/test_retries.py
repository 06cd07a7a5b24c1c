"""The retry policy's first attempt runs before any tenacity controller is built, with the same outcomes (issue 21)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest

from sale_graph.errors import EndpointError
from sale_graph.llm import retries

ENDPOINT = ("a", "http://127.0.0.1:9/v1", "m")


def _status_error(status: int) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    response = httpx.Response(status, request=request, headers={"retry-after": "0"})
    return openai.APIStatusError(f"HTTP {status}", response=response, body=None)


class Flaky:
    """Fails with ``failures`` in order, then answers ``"ok"``; counts its calls."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"

    async def acall(self) -> str:
        return self()


def _run(awaited: bool, call: Flaky, lines: list[str], max_retries: int = 2) -> str:
    if awaited:
        return asyncio.run(retries.acall_with_retries(call.acall, max_retries=max_retries, on_retry=lines.append,
                                                      endpoint=ENDPOINT, retries=lines))
    return retries.call_with_retries(call, max_retries=max_retries, on_retry=lines.append, endpoint=ENDPOINT, retries=lines)


@pytest.mark.parametrize("awaited", [False, True])
def test_a_call_that_succeeds_at_once_builds_no_retry_controller(monkeypatch: pytest.MonkeyPatch, awaited: bool) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a controller was built")

    monkeypatch.setattr(retries, "retrying", refuse)
    monkeypatch.setattr(retries, "aretrying", refuse)
    call, lines = Flaky(), []
    assert _run(awaited, call, lines) == "ok" and call.calls == 1 and lines == []


@pytest.mark.parametrize("awaited", [False, True])
def test_a_failed_first_attempt_counts_as_the_controller_s_first(awaited: bool) -> None:
    call, lines = Flaky(_status_error(503), _status_error(429)), []
    assert _run(awaited, call, lines) == "ok" and call.calls == 3
    assert [line.split(":")[0] for line in lines] == ["attempt 1 failed", "attempt 2 failed"]
    assert all("retried after 0.0 s (Retry-After)" in line for line in lines)


@pytest.mark.parametrize("awaited", [False, True])
def test_the_retry_budget_and_the_failure_kinds_are_unchanged(awaited: bool) -> None:
    call, lines = Flaky(*[_status_error(500)] * 3), []
    with pytest.raises(openai.APIStatusError) as info:
        _run(awaited, call, lines, max_retries=1)
    assert call.calls == 2 and len(lines) == 1 and retries.retries_of(info.value) == lines  # the retries kept on the failure
    refused = Flaky(_status_error(400))
    with pytest.raises(openai.APIStatusError):
        _run(awaited, refused, [])
    assert refused.calls == 1  # a refused request is not retried
    with pytest.raises(EndpointError, match="agent 'a'"):
        _run(awaited, Flaky(_status_error(401)), [])
