"""Sessions of several turns through a running gateway, and what became of them: for the load test and benchmark.

::

    results, wall_s = asyncio.run(drive(gateway.base_url, sessions=60, turns=3, concurrency=60))
    summary = LoadSummary.of(results, wall_s)
    assert summary.pins_lost == 0

Each session is a conversation with its own ``x-sale-session``: its turns go one after
another, each carrying the earlier turns and answers, over a keep-alive connection pool
that all sessions share (``httpx2``'s when it is installed, as the gateway's own forwarding
client: ``httpx``'s pool rescans its connections for each request, and at 100 connections
the client then spent as much CPU as the gateway) (so a session's turns reach whichever worker holds the connection
they get). ``concurrency`` sessions run at once. Every request ends as a :class:`Turn`:
answered (the ``x-sale-*`` headers kept), an error answer (its status and, when the body
is OpenAI's error shape, its code), or a failure with no answer at all (status 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sale_graph.integrations.gateway.upstream import http as client_http

NO_ANSWER = 0
"""The status of a request that got no HTTP answer (a timeout, a broken connection)."""
FLAKY_MIX = ((429, 0.10), (500, 0.05))
"""The upstream faults of the load test and benchmark: 10% rate limits, 5% server errors (``error_rates``)."""


@dataclass(frozen=True)
class Turn:
    """One request of a session and how it ended.

    Attributes:
        session: the ``x-sale-session``.
        index: the turn's number in its session, from 0.
        status: the HTTP status (:data:`NO_ANSWER` when none came).
        seconds: the request's wall time.
        auction_id: ``x-sale-auction-id`` of an answer.
        winner: ``x-sale-winner`` of an answer.
        pinned: ``x-sale-pinned`` of an answer.
        code: the OpenAI-shaped error's ``code``, or ``None``.
        shaped: an error answer's body is OpenAI's error shape (an answer: ``True``).
        detail: what went wrong, for a failure with no answer or an unshaped error.
    """

    session: str
    index: int
    status: int
    seconds: float
    auction_id: str | None = None
    winner: str | None = None
    pinned: bool | None = None
    code: str | None = None
    shaped: bool = True
    detail: str = ""

    @property
    def answered(self) -> bool:
        """A 200 with the gateway's decision headers."""
        return self.status == 200


def is_openai_error(body: Any) -> bool:
    """Whether ``body`` is ``{"error": {"message", "type", "code", "param"}}`` with a message."""
    if not (isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], dict)):
        return False
    error = body["error"]
    return set(error) == {"message", "type", "code", "param"} and isinstance(error["message"], str) and bool(error["message"])


async def _turn(client: client_http.AsyncClient, url: str, session: str, index: int, messages: list[dict[str, Any]]) -> Turn:
    start = time.perf_counter()
    try:
        response = await client.post(url, json={"model": "sale", "messages": messages}, headers={"x-sale-session": session})
    except (httpx.HTTPError, client_http.HTTPError) as exc:
        return Turn(session, index, NO_ANSWER, time.perf_counter() - start, shaped=False, detail=repr(exc))
    seconds = time.perf_counter() - start
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = None
    if response.status_code != 200:
        shaped = is_openai_error(body)
        code = str(body["error"]["code"]) if shaped else None
        return Turn(session, index, response.status_code, seconds, code=code, shaped=shaped,
                    detail="" if shaped else response.text[:200])
    headers = response.headers
    messages.append({"role": "assistant", "content": body["choices"][0]["message"].get("content") or ""})
    return Turn(session, index, 200, seconds, auction_id=headers.get("x-sale-auction-id"), winner=headers.get("x-sale-winner"),
                pinned=headers.get("x-sale-pinned") == "true")


async def drive(base_url: str, sessions: int, turns: int, concurrency: int, *, timeout_s: float = 120.0,
                prefix: str = "load", stagger_s: float = 0.0) -> tuple[list[Turn], float]:
    """Run ``sessions`` conversations of ``turns`` turns each, ``concurrency`` at once; the turns and the wall time.

    Args:
        base_url: the gateway's ``.../v1``.
        sessions: conversations to run.
        turns: requests per conversation, one after another.
        concurrency: conversations in flight at once.
        timeout_s: each request's limit.
        prefix: the sessions' names start with it (``<prefix>-<n>``), so runs on one store never meet.
        stagger_s: session ``n`` starts ``n * stagger_s`` after the first, so their connections open one by
            one: a worker's event loop accepts every connection waiting when it wakes, and a burst opened at
            once can all land on one worker.
    """
    url = f"{base_url}/chat/completions"
    limits = client_http.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with client_http.AsyncClient(timeout=timeout_s, limits=limits) as client:
        async def conversation(n: int) -> list[Turn]:
            session, messages, done = f"{prefix}-{n}", list[dict[str, Any]](), []
            await asyncio.sleep(n * stagger_s)
            async with gate:
                for index in range(turns):
                    messages.append({"role": "user", "content": f"What is {n} + {index}?"})
                    done.append(await _turn(client, url, session, index, messages))
                    if not done[-1].answered:
                        messages.pop()  # the client asks its next question instead
            return done

        start = time.perf_counter()
        everything = await asyncio.gather(*(conversation(n) for n in range(sessions)))
        wall = time.perf_counter() - start
    return [t for session in everything for t in session], wall


def worker_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds used so far by process ``pid`` and each of its children (the uvicorn workers; Linux ``/proc``)."""
    out: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            with contextlib.suppress(OSError):
                if b"resource_tracker" in Path(f"/proc/{entry}/cmdline").read_bytes():
                    continue  # multiprocessing's helper, not a worker
            out[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class LoadSummary:
    """What a load run shows.

    Attributes:
        requests: requests sent.
        wall_s: the run's wall time.
        answered: requests answered (200).
        errors: ``"<status> <code>"`` -> error answers in OpenAI's shape.
        unshaped: requests with no answer or an error answer not in OpenAI's shape (each described).
        sessions: sessions run.
        pins_lost: sessions whose answered turns came from more than one auction or winner.
        auctions: per session, its answered turns that ran an auction (``x-sale-pinned: false``).
        latencies: every request's wall time, answered or not.
        first_turn_s: the answered first turns' wall times.
        later_turn_s: the answered later turns' wall times.
    """

    requests: int
    wall_s: float
    answered: int
    errors: Counter[str] = field(default_factory=Counter)
    unshaped: list[str] = field(default_factory=list)
    sessions: int = 0
    pins_lost: int = 0
    auctions: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    first_turn_s: list[float] = field(default_factory=list)
    later_turn_s: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, turns: list[Turn], wall_s: float) -> LoadSummary:
        """Sum up the turns of one run."""
        summary = cls(requests=len(turns), wall_s=wall_s, answered=sum(t.answered for t in turns))
        decisions: dict[str, set[tuple[str | None, str | None]]] = defaultdict(set)
        auctions: dict[str, int] = defaultdict(int)
        for t in turns:
            summary.latencies.append(t.seconds)
            if t.answered:
                decisions[t.session].add((t.auction_id, t.winner))
                auctions[t.session] += not t.pinned
                (summary.first_turn_s if t.index == 0 else summary.later_turn_s).append(t.seconds)
            elif t.shaped:
                summary.errors[f"{t.status} {t.code}"] += 1
            else:
                summary.unshaped.append(f"{t.session} turn {t.index}: status {t.status} {t.detail}")
        summary.sessions = len({t.session for t in turns})
        summary.pins_lost = sum(len(d) > 1 for d in decisions.values())
        summary.auctions = {s: auctions.get(s, 0) for s in sorted({t.session for t in turns})}
        return summary

    @property
    def rps(self) -> float:
        """Requests per second, answered or not."""
        return self.requests / self.wall_s if self.wall_s else float("nan")

    def auctions_per_session(self) -> tuple[float, int]:
        """The mean and the largest number of auctions a session's answered turns ran."""
        counts = list(self.auctions.values())
        return (statistics.fmean(counts), max(counts)) if counts else (float("nan"), 0)

    def latency_ms(self, q: float, which: str = "all") -> float:
        """The ``q`` quantile (0.5, 0.95) in ms of ``all`` requests, or the answered ``first`` or ``later`` turns."""
        values = {"all": self.latencies, "first": self.first_turn_s, "later": self.later_turn_s}[which]
        return _p(values, q) * 1000


def auctions_run(metrics_text: str) -> Mapping[str, float]:
    """``sale_gateway_auctions_total`` by result (``ok``, ``failed``) from a ``/metrics`` page."""
    found = re.findall(r'^sale_gateway_auctions_total\{result="(\w+)"\} (\S+)$', metrics_text, re.MULTILINE)
    return {result: float(value) for result, value in found}


__all__ = ["FLAKY_MIX", "NO_ANSWER", "LoadSummary", "Turn", "auctions_run", "drive", "is_openai_error", "worker_cpu_s"]
