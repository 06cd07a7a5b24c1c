"""``jury_batch``: one judge scores every pending bid in one call (``SaleContext(jury_mode="batched")``).

The per-bid jury (the method's own, the default) costs ``|A|^2`` calls, each repeating
the task and the rubric. Batched, each judge makes one call that lists every bid
under a letter and answers one score per letter (a JSON object where the endpoint
constrains it, ``LABEL: n`` lines elsewhere). The bids are shuffled per judge
(seeded by the auction and the judge, so a run is reproducible) so no bidder is
always first. A letter without a usable score is a *missing* vote with the reason,
renormalised over the judges that answered, exactly as in the per-bid jury.
"""

from __future__ import annotations

import random
import string
from typing import Any, NotRequired

from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from sale_graph.context import SaleContext
from sale_graph.events import JuryEvent, emit
from sale_graph.jury.ask import AnswerFormat, batch_schema, response_format
from sale_graph.jury.read import ParsedScore, parse_batch_scores, strip_quoted_bid
from sale_graph.llm import abuild_model
from sale_graph.nodes._common import Node, ctx_of, dual_node, started_fingerprint
from sale_graph.nodes.jury import Ask, aask_judge, ask_judge, jury_ledger, make_vote, pending_jury, vote_notes
from sale_graph.nodes.replay import mark_replayed, replay_guard
from sale_graph.pool import AgentSpec
from sale_graph.prompts import batched_jury_messages
from sale_graph.services import SaleServices
from sale_graph.state import JuryVote, Phase, Round, SaleState


class BatchBid(TypedDict):
    """One bid in a judge's batch."""

    bidder: str
    round: Round
    strategy: str


class JuryBatchTask(TypedDict):
    """The payload of one ``Send('jury_batch', ...)``: one judge and every bid it has not scored."""

    auction_id: str
    judge: str
    task: str
    bids: list[BatchBid]
    run_fingerprint: NotRequired[dict[str, Any]]  # the run's context as it started, checked when a resumed run asks again


def pending_batches(state: SaleState) -> list[JuryBatchTask]:
    """One batch per judge with the bids it has not scored yet (from :func:`pending_jury`)."""
    by_judge: dict[str, list[BatchBid]] = {}
    for p in pending_jury(state):
        by_judge.setdefault(p["judge"], []).append(BatchBid(bidder=p["bidder"], round=p["round"], strategy=p["strategy"]))
    batches = [JuryBatchTask(auction_id=state["auction_id"], judge=j, task=state["task"], bids=b) for j, b in by_judge.items()]
    started = started_fingerprint(state)
    if started:
        for batch in batches:
            batch["run_fingerprint"] = started
    return batches


def shuffled(batch: JuryBatchTask) -> list[tuple[str, BatchBid]]:
    """The batch's bids in this judge's order, each with its letter (A, B, ...)."""
    bids = list(batch["bids"])
    random.Random(f"{batch['auction_id']}:{batch['judge']}").shuffle(bids)
    return list(zip(string.ascii_uppercase, bids, strict=False))


def _votes(batch: JuryBatchTask, judge: AgentSpec, labelled: list[tuple[str, BatchBid]], asked: Ask, nonce: str) -> list[JuryVote]:
    fmt, result, failure, retries = asked
    labels = [label for label, _ in labelled]
    if result is None:
        parsed = dict.fromkeys(labels, ParsedScore(None, failure))
    else:
        own = result.text
        for _, bid in labelled:
            own = strip_quoted_bid(own, bid["strategy"], nonce)
        parsed = parse_batch_scores(own if fmt == "text" else result.text, labels, fmt)
    return [make_vote(judge.name, bid["bidder"], bid["round"], parsed[label], fmt, result, failure, retries)
            for label, bid in labelled]


def make_jury_batch_node(services: SaleServices) -> Node:
    """Build the ``jury_batch`` node bound to ``services`` (a sync and an async implementation)."""

    def start(batch: JuryBatchTask, runtime: Runtime[SaleContext]) -> tuple[Any, ...]:
        ctx = ctx_of(runtime)
        replayed = replay_guard(batch.get("run_fingerprint"), ctx)  # a resumed run checks its context before paying
        judge = ctx.resolved_pool().get(batch["judge"])
        # One answer holds a score per bid: room for each, on top of the judge's usual cap.
        cap = ctx.cap("jury", judge) + 8 * len(batch["bids"])
        labelled = shuffled(batch)
        nonces: dict[str, str] = {}

        def prompt_for(fmt: AnswerFormat) -> tuple[list[Any], dict[str, Any] | None]:
            prompt = batched_jury_messages(batch["task"], [(lb, b["strategy"]) for lb, b in labelled], json_answer=fmt != "text")
            nonces["nonce"] = prompt.nonce
            schema = batch_schema([lb for lb, _ in labelled])
            return list(prompt.messages), response_format(fmt, schema, name="jury_scores")

        return ctx, judge, cap, labelled, prompt_for, nonces, replayed

    def finish(batch: JuryBatchTask, runtime: Runtime[SaleContext], judge: AgentSpec, labelled: list[tuple[str, BatchBid]],
               asked: Ask, nonce: str, replayed: bool) -> dict[str, Any]:
        votes = _votes(batch, judge, labelled, asked, nonce)
        for vote in votes:
            emit(runtime, JuryEvent(event="jury", judge=vote["judge"], bidder=vote["bidder"], round=vote["round"],
                                    likert=vote["likert"], status=vote["status"], reason=vote["reason"], answer_format=asked[0]))
        phase: Phase = "refine" if all(b["round"] == "refined" for b in batch["bids"]) else "jury"
        bidders = [f"{b['bidder']} ({b['round']})" for b in batch["bids"]]
        update = {"votes": votes, "ledger": jury_ledger(phase, judge, asked[1]), "notes": vote_notes(judge.name, asked[3], bidders)}
        return mark_replayed(update, f"the jury call of {judge.name} on {', '.join(bidders)}") if replayed else update

    def jury_batch(batch: JuryBatchTask, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Ask one judge to score every pending bid in one call."""
        ctx, judge, cap, labelled, prompt_for, nonces, replayed = start(batch, runtime)
        model = services.model_factory(judge, phase="jury", max_tokens=cap, logprobs=False)
        asked = ask_judge(judge, model, prompt_for, ctx.run_limiter(batch["auction_id"]))
        return finish(batch, runtime, judge, labelled, asked, nonces.get("nonce", ""), replayed)

    async def ajury_batch(batch: JuryBatchTask, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Ask one judge to score every pending bid in one call (asyncio)."""
        ctx, judge, cap, labelled, prompt_for, nonces, replayed = start(batch, runtime)
        model = await abuild_model(services.model_factory, judge, phase="jury", max_tokens=cap, logprobs=False)
        asked = await aask_judge(judge, model, prompt_for, ctx.run_limiter(batch["auction_id"]))
        return finish(batch, runtime, judge, labelled, asked, nonces.get("nonce", ""), replayed)

    return dual_node(jury_batch, ajury_batch)
