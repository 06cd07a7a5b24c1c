"""``score``: cost and entropy of every bid, the table the jury's scores complete."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.runtime import Runtime

from sale_graph.context import SaleContext
from sale_graph.errors import AuctionError
from sale_graph.events import ScoreEvent, emit
from sale_graph.nodes._common import ctx_of
from sale_graph.pool import AgentPool
from sale_graph.scoring import EntropyScale, common_entropy_scale, strategy_cost, strategy_value
from sale_graph.state import Bid, JuryVote, SaleState, ScoreRow
from sale_graph.weights import Weights


def bid_entropies(bids: Sequence[Bid]) -> EntropyScale:
    """Every successful bid's ``H`` on one scale, and the policy used (see :func:`common_entropy_scale`).

    The original round fixes the scale: refined bids are put on it and never move it,
    so an original bid's value is the same in both ``select`` passes.
    """
    ok = [b for b in bids if b["status"] == "ok"]
    logprob_h = {_key(b): (b["entropy"] if b["entropy_source"] == "logprobs" else None) for b in ok}
    text_h = {_key(b): b.get("entropy_text", b["entropy"]) for b in ok}
    return common_entropy_scale(logprob_h, text_h, reference={_key(b) for b in ok if b["round"] == "original"})


def _key(b: Bid | ScoreRow) -> str:
    return f"{b['agent']}/{b['round']}"


def _note(entropy_source: str, missing: list[str], judges: list[str]) -> str:
    notes = []
    if entropy_source == "text-rescaled":
        notes.append("entropy: text estimate on the log-prob scale (mixed sources)")
    if missing and len(missing) == len(judges):
        notes.append("no judge answered")
    elif missing:
        notes.append(f"jury renormalised over {len(judges) - len(missing)}/{len(judges)} judges")
    return "; ".join(notes)


def build_table(bids: Sequence[Bid], votes: Sequence[JuryVote], pool: AgentPool, weights: Weights) -> list[ScoreRow]:
    """One row per successful bid: price, tokens, ``C``, ``H``, each judge's ``gamma``, ``V`` and ``C - V``.

    Judges are every agent of the pool. A judge with no usable vote is listed in
    ``missing_judges`` and the value uses the judges that answered (see
    :func:`sale_graph.scoring.strategy_value`); whether enough judges answered is
    the select node's quorum check.
    """
    judges = pool.names
    weights = weights.for_prices({a.name: a.price for a in pool.agents})  # w_c scaled to the pool when none is set
    w_jury = weights.jury_weights(judges)
    by_key: dict[tuple[str, str, str], JuryVote] = {(v["judge"], v["bidder"], v["round"]): v for v in votes}
    scale = bid_entropies(bids)
    rows: list[ScoreRow] = []
    for b in (b for b in bids if b["status"] == "ok"):
        agent = pool.get(b["agent"])
        gammas: dict[str, float | None] = {}
        for j in judges:
            vote = by_key.get((j, b["agent"], b["round"]))
            gammas[j] = vote["gamma"] if vote is not None and vote["status"] == "ok" else None
        missing = [j for j, g in gammas.items() if g is None]
        entropy = scale.values[_key(b)]
        cost = strategy_cost(weights.cost_weight, agent.price, b["tokens"])
        value = strategy_value(entropy, [gammas[j] for j in judges], weights.w_h, w_jury)
        rows.append(
            ScoreRow(
                agent=b["agent"], round=b["round"], price=agent.price, tokens=b["tokens"],
                cost=round(cost, 6), entropy=round(entropy, 6), entropy_source=scale.sources[_key(b)],
                jury=gammas, missing_judges=missing, value=round(value, 6), net=round(cost - value, 6),
                note=_note(scale.sources[_key(b)], missing, judges),
            )
        )
    return rows


def score(state: SaleState, runtime: Runtime[SaleContext]) -> dict[str, Any]:
    """Cost and entropy for the bids so far; fails clearly if every agent's bid failed."""
    ctx = ctx_of(runtime)
    bids = state.get("bids", [])
    if not any(b["status"] == "ok" for b in bids if b["round"] == "original"):
        reasons = "; ".join(f"{b['agent']}: {b.get('error', '?')}" for b in bids) or "no bids"
        raise AuctionError(f"no agent produced a bid ({reasons}). Check the endpoints with `sale pool check`.")
    rows = build_table(bids, state.get("votes", []), ctx.resolved_pool(), ctx.resolved_weights())
    for r in rows:
        emit(runtime, ScoreEvent(event="score", agent=r["agent"], round=r["round"], cost=r["cost"], entropy=r["entropy"]))
    return {"scores": rows, "entropy_policy": bid_entropies(bids).policy}
