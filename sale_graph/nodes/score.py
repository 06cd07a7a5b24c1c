"""``score``: cost and entropy of every bid, the table the jury's scores complete."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.runtime import Runtime

from sale_graph.context import SaleContext
from sale_graph.nodes._common import ctx_of, emit
from sale_graph.pool import AgentPool
from sale_graph.scoring import strategy_cost, strategy_value
from sale_graph.state import Bid, JuryVote, SaleState, ScoreRow
from sale_graph.weights import Weights


class AuctionError(RuntimeError):
    """The auction cannot go on (for example, no agent produced a bid)."""


def build_table(bids: Sequence[Bid], votes: Sequence[JuryVote], pool: AgentPool, weights: Weights) -> list[ScoreRow]:
    """One row per successful bid: price, tokens, ``C``, ``H``, each judge's ``gamma``, ``V`` and ``C - V``.

    Judges are every agent of the pool. A judge with no usable vote is listed in
    ``missing_judges`` and the value uses the judges that answered (see
    :func:`sale_graph.scoring.strategy_value`).
    """
    judges = pool.names
    w_jury = weights.jury_weights(judges)
    by_key: dict[tuple[str, str, str], JuryVote] = {(v["judge"], v["bidder"], v["round"]): v for v in votes}
    ok_bids = [b for b in bids if b["status"] == "ok"]
    # Entropies from log-probs and from text are on different scales: when any bid lacks
    # log-probs, every bid of the auction uses the text-level estimate.
    common_text = any(b["entropy_source"] != "logprobs" for b in ok_bids)
    rows: list[ScoreRow] = []
    for b in ok_bids:
        entropy = b.get("entropy_text", b["entropy"]) if common_text else b["entropy"]
        source = "text" if common_text else "logprobs"
        agent = pool.get(b["agent"])
        gammas: dict[str, float | None] = {}
        for j in judges:
            vote = by_key.get((j, b["agent"], b["round"]))
            gammas[j] = vote["gamma"] if vote is not None and vote["status"] == "ok" else None
        missing = [j for j, g in gammas.items() if g is None]
        cost = strategy_cost(weights.w_c, agent.price, b["tokens"])
        value = strategy_value(entropy, [gammas[j] for j in judges], weights.w_h, w_jury)
        note = "entropy: text-level for all bids (mixed sources)" if common_text and b["entropy_source"] == "logprobs" else ""
        if missing and len(missing) == len(judges):
            note = "; ".join(filter(None, [note, "no judge answered: value from entropy only"]))
        elif missing:
            note = "; ".join(filter(None, [note, f"jury renormalised over {len(judges) - len(missing)}/{len(judges)} judges"]))
        rows.append(
            ScoreRow(
                agent=b["agent"], round=b["round"], price=agent.price, tokens=b["tokens"],
                cost=round(cost, 6), entropy=entropy, entropy_source=source,
                jury=gammas, missing_judges=missing, value=round(value, 6), net=round(cost - value, 6), note=note,
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
        emit(runtime, "score", agent=r["agent"], round=r["round"], cost=r["cost"], entropy=r["entropy"])
    return {"scores": rows}
