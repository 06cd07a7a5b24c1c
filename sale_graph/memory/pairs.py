"""Choosing contrastive pairs (a winning and a losing bid of one past auction): pure, no store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from sale_graph.memory.records import ContrastivePair, SimilarTask, StrategyRecord

_OUTCOME_RANK = {"passed": 0, "unknown": 1}


def select_contrastive_pairs(
    similar: Sequence[SimilarTask],
    bids: Iterable[StrategyRecord],
    agent: str,
    max_pairs: int = 4,
    *,
    graded_first: bool = False,
) -> tuple[list[ContrastivePair], str]:
    """Choose contrastive pairs from the bids of similar past auctions.

    A pair is (winner, loser) from one auction. Winners that failed on
    execution are never used; winners that passed rank before ones whose
    outcome is unknown. Pairs are ordered by: the retrieving agent's own losing
    bid first, then its own winning bid, then other agents' bids; then by
    winner outcome; then by task similarity (highest first); then the loser
    closest to winning (highest value minus cost: the most informative
    contrast). Because the agent's own pairs rank before every other pair, the
    first pair involves the agent's own past bid whenever the similar auctions
    hold one that can be paired (a usable winner and a loser, one of the two
    its own), however much more similar the other agents' auctions are.

    Args:
        similar: the similar past auctions.
        bids: their stored bids (bids of other auctions are ignored).
        agent: the retrieving (refining) agent.
        max_pairs: the most pairs to return.
        graded_first: rank every pair whose auction has a known outcome (its winner
            passed) before the pairs of unlabelled auctions, ahead of the order above.

    Returns:
        The pairs and, when there are none, a sentence saying why (else "").

    Raises:
        ValueError: ``max_pairs`` is below 1.
    """
    if max_pairs < 1:
        raise ValueError(f"max_pairs must be >= 1, got {max_pairs}")
    by_auction: dict[str, list[StrategyRecord]] = {}
    for bid in bids:
        by_auction.setdefault(bid.auction_id, []).append(bid)
    candidates: list[tuple[tuple[Any, ...], ContrastivePair]] = []
    no_bids = no_winner = failed = no_loser = 0
    for sim in similar:
        auction_bids = by_auction.get(sim.auction_id, [])
        if not auction_bids:
            no_bids += 1
            continue
        winners = [b for b in auction_bids if b.won]
        usable = [w for w in winners if w.outcome != "failed"]
        losers = [b for b in auction_bids if not b.won]
        if not winners:
            no_winner += 1
            continue
        if not usable:
            failed += 1
            continue
        if not losers:
            no_loser += 1
            continue
        candidates += [_ranked_pair(sim, w, lo, agent) for w in usable for lo in losers]
    candidates.sort(key=lambda item: (_OUTCOME_RANK[item[1].winner.outcome] if graded_first else 0, item[0]))
    pairs = [pair for _, pair in candidates[:max_pairs]]
    if pairs:
        return pairs, ""
    return [], _no_pair_reason(len(similar), no_bids, no_winner, failed, no_loser)


def _ranked_pair(
    sim: SimilarTask, w: StrategyRecord, lo: StrategyRecord, agent: str
) -> tuple[tuple[Any, ...], ContrastivePair]:
    """One candidate pair and its sort key (the order :func:`select_contrastive_pairs` documents)."""
    involves: Literal["loser", "winner"] | None
    if lo.agent == agent:
        involves, tier = "loser", 0
    elif w.agent == agent:
        involves, tier = "winner", 1
    else:
        involves, tier = None, 2
    key = (tier, _OUTCOME_RANK[w.outcome], -sim.similarity, -(lo.value - lo.cost), sim.auction_id, lo.agent, lo.round, w.agent, w.round)
    return key, ContrastivePair(sim.auction_id, sim.task, sim.similarity, w, lo, involves, agent)


def _no_pair_reason(n_similar: int, no_bids: int, no_winner: int, failed: int, no_loser: int) -> str:
    """The sentence saying why ``n_similar`` similar auctions gave no pair, from the counts of each cause."""
    parts = []
    if no_bids:
        parts.append(f"{no_bids} with no stored bids")
    if no_winner:
        parts.append(f"{no_winner} with no winning bid recorded")
    if failed:
        parts.append(f"{failed} whose winner failed on execution")
    if no_loser:
        parts.append(f"{no_loser} with no losing bid")
    detail = ", ".join(parts) if parts else "none given"
    return f"{n_similar} similar past task(s) but no winner/loser pair: {detail}"


def no_similar_reason(nearest: Sequence[SimilarTask], min_similarity: float, domain: str | None, graded_only: bool = False) -> str:
    """Why no past task counts as similar: the closest one and its similarity, or that there was none.

    Args:
        nearest: the nearest past tasks found, closest first (all below the floor).
        min_similarity: the similarity floor.
        domain: the domain searched, if the search was restricted to one.
        graded_only: whether the search left out the auctions whose outcome is unknown.

    Returns:
        A sentence for :attr:`ContrastiveResult.reason`.
    """
    scope = f" in domain {domain!r}" if domain is not None else ""
    what = "graded past task" if graded_only else "past task"
    if nearest:
        best = nearest[0]
        snippet = best.task if len(best.task) <= 60 else best.task[:57] + "..."
        return (
            f"no {what}{scope} above similarity {min_similarity:g} "
            f"(closest: {best.similarity:.3f}, auction {best.auction_id!r}: {snippet!r})"
        )
    return f"no {what}{scope} to compare with (all excluded or none in that domain)"
