"""``POST /v1/chat/completions``: decide who answers (an auction, a session's pin, a turn's winner), then forward.

Per request:

1. the client key (:mod:`.keys`), the body under its size limit and every field (:mod:`.request`);
2. ``model`` naming a pool agent: forwarded to that agent as it is (``direct``);
3. ``model: "sale"``: with a session (``x-sale-session``, else ``user``) that holds a pin,
   the pinned agent answers (``pinned``); without a session, a request whose last
   message is not a new human turn (the client's tool results) continues with the winner
   of that turn's auction (``continued``, found by a hash of the conversation up to the
   turn's human message), and so does a client's retry of a human turn (the ``openai``
   SDKs' ``x-stainless-retry-count``: a turn whose answer broke is not paid for twice);
   else a route-only auction runs on the turn in its conversation (``auction``) and its
   winner is pinned (to the session, and to the turn);
4. the request goes to the agent with its strategy in the system message
   (:mod:`.upstream`); when its endpoint fails for good and fallback is allowed
   (``on_execution_error="fallback"``, the default), the runner-up answers instead and
   ``x-sale-fallback`` names it;
5. the answer as the endpoint gave it, streamed or not; a non-streamed one carries the
   ``sale`` object (the auction's summary, this request's ledger, notes); the
   ``x-sale-*`` headers say who answered and what the auction cost.

A client that disconnects costs no answer: the auction it started runs to its end (its
bids are paid for, and its pin serves the client's retry), but the agent is not asked when
the client is gone by then, and a request to the agent still waiting for its answer (or
for a stream's first byte) is cancelled, its endpoint slot freed (:func:`forward_while_connected`);
a stream the client leaves is closed by :class:`ForwardedStream`. Each counts as a 499.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from sale_graph.context import SaleContext
from sale_graph.errors import SaleError, TaskError
from sale_graph.integrations.gateway.auction import pin_of
from sale_graph.integrations.gateway.core import Gateway
from sale_graph.integrations.gateway.errors import GatewayError, client_closed, from_sale_error, internal_error
from sale_graph.integrations.gateway.request import RETRY_HEADER, SALE_MODEL, ChatRequest, parse_chat, read_body
from sale_graph.integrations.gateway.sessions import Pin
from sale_graph.integrations.gateway.upstream import Reply, UpstreamFailure, UpstreamStream, request_body
from sale_graph.pool import AgentSpec

log = logging.getLogger("sale_graph.gateway")

AUCTION_ID = "x-sale-auction-id"
WINNER = "x-sale-winner"
PINNED = "x-sale-pinned"
AUCTION_COST = "x-sale-auction-cost"
AUCTION_TOKENS = "x-sale-auction-tokens"
FALLBACK = "x-sale-fallback"
PING_S = 15.0
"""Seconds between keep-alive comments on a quiet stream."""

Kind = Literal["auction", "pinned", "continued", "direct"]


@dataclass
class Decision:
    """Who answers a request and why.

    Attributes:
        kind: ``auction`` (one ran now), ``pinned`` (the session's), ``continued`` (the turn's), ``direct`` (named).
        agent: the agent that answers first.
        pin: the auction behind the answer (``None`` for ``direct``).
        record: the auction's whole record when one ran for this request.
        notes: what the client should know (a pin that could not be kept, a fallback...).
    """

    kind: Kind
    agent: str
    pin: Pin | None = None
    record: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def auction_ledger(self) -> list[dict[str, Any]]:
        """The auction's ledger lines paid for by this request (none when pinned)."""
        return list((self.record or {}).get("ledger", []))

    def headers(self) -> dict[str, str]:
        """The ``x-sale-*`` headers of the answer."""
        if self.pin is None:
            return {}
        ledger = self.auction_ledger
        return {
            AUCTION_ID: self.pin.auction_id,
            WINNER: self.pin.agent,
            PINNED: "false" if self.kind == "auction" else "true",
            AUCTION_COST: f"{sum(float(e.get('cost_usd') or 0.0) for e in ledger):.8f}",
            AUCTION_TOKENS: str(sum(int(e.get("input_tokens") or 0) + int(e.get("output_tokens") or 0) for e in ledger)),
        }


def _content_key(content: Any) -> str:
    return content if isinstance(content, str) else json.dumps(content, sort_keys=True, ensure_ascii=False)


def turn_key(client: str, messages: Sequence[dict[str, Any]]) -> str | None:
    """The key of the conversation's last human turn: a hash of the messages up to it (roles and contents).

    The request that brings the turn's tool results repeats those messages, so it finds the
    turn's auction; ``None`` when there is no human message.
    """
    last = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    if last is None:
        return None
    prefix = [[m.get("role"), _content_key(m.get("content"))] for m in messages[: last + 1]]
    digest = hashlib.sha256(json.dumps(prefix, ensure_ascii=False).encode()).hexdigest()[:32]
    return f"turn:{client}:{digest}"


async def _run_auction(gw: Gateway, chat: ChatRequest, ctx: SaleContext) -> dict[str, Any]:
    auction_id = uuid.uuid4().hex
    start = time.perf_counter()
    try:
        record = await gw.auctions.run(chat.messages, tool_names=chat.tool_names, ctx=ctx, auction_id=auction_id)
    except SaleError as exc:
        if not isinstance(exc, TaskError):
            gw.metrics.auctions.labels("failed").inc()
            gw.metrics.auction_seconds.observe(time.perf_counter() - start)
        error = from_sale_error(exc)
        error.headers[AUCTION_ID] = auction_id
        log.warning("auction %s failed: %s", auction_id, gw.redact(error.message))
        raise error from exc
    gw.metrics.auction_seconds.observe(time.perf_counter() - start)
    gw.metrics.auctions.labels("ok").inc()
    gw.metrics.wins.labels(record["selection"]["winner"]).inc()
    gw.metrics.ledger(record.get("ledger", []))
    return record


def _shared_failure(error: GatewayError) -> GatewayError:
    """The failure of a session's first auction, for the requests that waited for it."""
    return GatewayError(error.status, f"{error.message} (the session's first auction, which this request waited for)",
                        code=error.code, param=error.param, headers=error.headers)


async def _auction(gw: Gateway, chat: ChatRequest, ctx: SaleContext, keys: list[str], session: str | None,
                   notes: list[str]) -> Decision:
    """Run an auction and pin its winner under ``keys``; a session's concurrent first requests share one auction.

    The requests that waited for a session's auction get its winner, or its failure when
    the auction could not decide (they never run auctions of their own side by side, which
    would pin the session to several winners); when it failed on its own request (a 400),
    the next of them runs the session's auction.
    """
    while session is not None and (running := gw.inflight.get(session)) is not None:
        shared = await asyncio.shield(running)
        if isinstance(shared, Pin):
            return Decision("pinned", shared.agent, shared,
                            notes=[*notes, "the session's first auction was running: its winner answers"])
        if isinstance(shared, GatewayError):
            raise _shared_failure(shared)
    future: asyncio.Future[Pin | GatewayError | None] | None = None
    if session is not None:
        future = gw.inflight[session] = asyncio.get_running_loop().create_future()
    outcome: Pin | GatewayError | None = None
    try:
        record = await _run_auction(gw, chat, ctx)
        outcome = pin_of(record)
        if session is not None:  # another worker may have pinned the session meanwhile: its pin stays
            held = await gw.sessions.put_if_absent(session, outcome)
            if held.auction_id != outcome.auction_id:
                outcome = held
                return Decision("pinned", held.agent, held, record, notes=[
                    *notes, *record.get("notes", []), f"another gateway worker pinned the session to auction "
                    f"{held.auction_id} while this one ran: its winner {held.agent!r} answers"])
        for key in keys:
            if key != session:
                await gw.sessions.put(key, outcome)
        return Decision("auction", outcome.agent, outcome, record, notes=[*notes, *record.get("notes", [])])
    except GatewayError as error:
        if error.status >= 500:  # the auction could not decide: so it would for the waiters
            outcome = error
        raise
    finally:
        if future is not None:
            future.set_result(outcome)  # None: a waiter runs the auction
            if gw.inflight.get(session or "") is future:
                del gw.inflight[session or ""]


async def decide(gw: Gateway, chat: ChatRequest, ctx: SaleContext, client: str) -> Decision:
    """Who answers this ``model: "sale"`` request (see the module docstring)."""
    notes: list[str] = []
    if chat.session is not None:
        key = f"session:{client}:{chat.session}"
        pin = await gw.sessions.get(key)
        if pin is not None and pin.agent in gw.pool.names:
            return Decision("pinned", pin.agent, pin)
        if pin is not None:
            notes.append(f"the session's auction {pin.auction_id} was won by {pin.agent!r}, which the pool no longer has: "
                         "a new auction")
            await gw.sessions.delete(key)
        return await _auction(gw, chat, ctx, [key], key, notes)
    turn = turn_key(client, chat.messages)
    if turn is None:
        raise from_sale_error(TaskError("the conversation has no user message: the auction needs a human turn to bid on"))
    if chat.last_role != "user" or chat.retry:
        pin = await gw.sessions.get(turn)
        if pin is not None and pin.agent in gw.pool.names:
            said = [f"the client's retry {chat.retry} of this turn ({RETRY_HEADER}): its auction's winner answers"]
            return Decision("continued", pin.agent, pin, notes=said if chat.last_role == "user" else [])
    if chat.last_role != "user":
        notes.append("no auction on record for this turn (expired, or run by another gateway process): a new auction "
                     "decides who continues it; send x-sale-session to pin a conversation")
    return await _auction(gw, chat, ctx, [turn], None, notes)


def candidates(gw: Gateway, decision: Decision, ctx: SaleContext) -> list[tuple[AgentSpec, str | None]]:
    """The agents to try in order, with their strategies: the decided one, then the runner-up when fallback is allowed."""
    pin = decision.pin
    if pin is None:
        return [(gw.pool.get(decision.agent), None)]
    out: list[tuple[AgentSpec, str | None]] = [(gw.pool.get(pin.agent), pin.strategy)]
    if ctx.on_execution_error == "fallback" and pin.runner_up in gw.pool.names and pin.runner_up_strategy:
        out.append((gw.pool.get(pin.runner_up), pin.runner_up_strategy))
    return out


def upstream_error(tried: Sequence[UpstreamFailure], headers: dict[str, str]) -> GatewayError:
    """The answer when every agent tried failed: 429 (rate-limited), 400 (the request was refused) or 502."""
    last = tried[-1]
    head = "the answering agent's endpoint failed" if len(tried) == 1 else "the winner's endpoint failed, and so did the runner-up's"
    message = f"{head}: " + " | ".join(f.message for f in tried)
    if last.status == 429:
        retry = str(max(1, math.ceil(last.retry_after or 1)))
        return GatewayError(429, message, code="rate_limit_exceeded", headers={**headers, "Retry-After": retry})
    if last.status in (400, 413, 422):
        return GatewayError(400, message, code="upstream_rejected_request", headers=headers)
    return GatewayError(502, message, code="upstream_error", headers=headers)


def sale_object(decision: Decision, agent: AgentSpec, usage: dict[str, Any], tried: Sequence[UpstreamFailure],
                retries: Sequence[str]) -> dict[str, Any]:
    """The ``sale`` object of a non-streamed answer: the auction's summary, this request's ledger and notes."""
    assert decision.pin is not None
    notes = list(decision.notes)
    notes += [f"{agent.name}'s endpoint was retried: {line}" for line in retries]
    out: dict[str, Any] = {**decision.pin.summary, "kind": decision.kind, "pinned": decision.kind != "auction",
                           "answered_by": agent.name, "ledger": [*decision.auction_ledger, usage], "notes": notes}
    if tried:
        out["fallback"] = {"from": tried[0].agent.name, "to": agent.name, "reason": tried[-1].message}
    return out


class ForwardedStream(EventSourceResponse):
    """The endpoint's SSE events passed on; the upstream request is closed when the client goes, whatever happens."""

    def __init__(self, stream: UpstreamStream, headers: dict[str, str], on_close: Callable[[UpstreamStream], None]) -> None:
        super().__init__(stream.events(), headers=headers, sep="\n", ping=PING_S)
        self.stream = stream
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream, then close the upstream response (also when the client disconnected before the first event)."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.stream.aclose()
            self._on_close(self.stream)


async def forward(gw: Gateway, chat: ChatRequest, ctx: SaleContext, decision: Decision) -> Response:
    """Send the request to the decided agent (then the runner-up, when allowed) and answer with what it said."""
    headers = decision.headers()
    tried: list[UpstreamFailure] = []
    outcome: Reply | UpstreamStream | None = None
    agent = gw.pool.get(decision.agent)
    for agent, strategy in candidates(gw, decision, ctx):
        body = request_body(agent, chat, strategy)
        try:
            if chat.stream:
                outcome = await gw.upstream.open_stream(agent, body, keep_usage=chat.include_usage)
            else:
                outcome = await gw.upstream.complete(agent, body)
            break
        except UpstreamFailure as failure:
            log.warning("%s: %s", decision.kind, failure.message)
            tried.append(failure)
    if outcome is None:
        raise upstream_error(tried, headers)
    if tried:
        headers[FALLBACK] = agent.name
        gw.metrics.fallbacks.labels(tried[0].agent.name, agent.name).inc()
    if isinstance(outcome, UpstreamStream):
        gw.metrics.in_flight.inc()
        return ForwardedStream(outcome, headers, lambda s: _stream_closed(gw, s))
    gw.metrics.ledger([outcome.usage])
    body = outcome.body
    if decision.pin is not None:
        body = {**body, "sale": sale_object(decision, agent, dict(outcome.usage), tried, outcome.retries)}
    return JSONResponse(body, headers=headers)


def _stream_closed(gw: Gateway, stream: UpstreamStream) -> None:
    gw.metrics.in_flight.dec()
    if stream.usage is not None:
        gw.metrics.ledger([stream.usage])


async def _disconnected(receive: Receive) -> None:
    """Return when the client disconnects (the request's body was read: nothing else can come)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def forward_while_connected(request: Request, gw: Gateway, chat: ChatRequest, ctx: SaleContext,
                                  decision: Decision) -> Response:
    """:func:`forward`, unless the client is gone: not started then, cancelled when it leaves before the answer.

    Raises:
        GatewayError: 499 when the client left (the upstream request was not sent, or was
            cancelled and its endpoint slot freed), or what :func:`forward` raised.
    """
    if await request.is_disconnected():
        raise client_closed()
    work = asyncio.ensure_future(forward(gw, chat, ctx, decision))
    watch = asyncio.ensure_future(_disconnected(request.receive))
    try:
        await asyncio.wait((work, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        left = watch.done() and not watch.cancelled()
        if left or not work.done():
            work.cancel()
    try:
        response = await work
    except asyncio.CancelledError:
        if left:
            raise client_closed() from None
        raise
    if left and isinstance(response, ForwardedStream):  # it answered as the client left: close its stream here
        await response.stream.aclose()
        _stream_closed(gw, response.stream)
        raise client_closed()
    return response


async def chat_completions(request: Request) -> Response:
    """``POST /v1/chat/completions`` (see the module docstring); every failure in OpenAI's error shape."""
    gw: Gateway = request.app.state.sale_gateway
    gw.metrics.in_flight.inc()
    try:
        client = gw.keys.check(request.headers)
        chat = parse_chat(await read_body(request, gw.max_body_bytes), request.headers, gw.models)
        ctx = gw.auctions.context_for(chat.options)
        if chat.model == SALE_MODEL:
            decision = await decide(gw, chat, ctx, client)
        else:
            decision = Decision("direct", chat.model)
        gw.metrics.turns.labels(decision.kind).inc()
        return await forward_while_connected(request, gw, chat, ctx, decision)
    except GatewayError as error:
        gw.metrics.error(error.status, error.code)
        if error.status == 499:
            log.info("a client left before its answer: %s", error.message)
        return error.response()
    except Exception:
        log.error("the gateway failed on a request:\n%s", gw.redact(_traceback()))
        bug = internal_error()
        gw.metrics.error(bug.status, bug.code)
        return bug.response()
    finally:
        gw.metrics.in_flight.dec()


def _traceback() -> str:
    import traceback

    return traceback.format_exc()


__all__ = [
    "AUCTION_COST",
    "AUCTION_ID",
    "AUCTION_TOKENS",
    "FALLBACK",
    "PINNED",
    "WINNER",
    "Decision",
    "ForwardedStream",
    "chat_completions",
    "decide",
    "forward",
    "forward_while_connected",
    "turn_key",
]
