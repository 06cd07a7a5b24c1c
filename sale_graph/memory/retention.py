"""Retention of the auction memory: a count limit and an age limit, unlabelled auctions pruned first.

Every auction is remembered, one per task or chat turn, so a memory that is never
pruned only grows, and auctions whose outcome never came (``unknown``: a route-only
run nobody graded, a chat turn) stay usable as examples forever. Two limits, either
or both (``AuctionMemory.prune``, the run settings ``memory_max_auctions`` and
``memory_max_age_days`` applied after each run, ``sale memory prune``):

* **age**: every auction recorded more than ``max_age_days`` days ago is removed;
* **count**: when more than ``max_auctions`` auctions remain, the oldest unlabelled
  auctions (outcome ``unknown``) go first, then the oldest graded ones (``passed``
  or ``failed``), until ``max_auctions`` remain.

An auction goes with all its bids. The auctions in ``keep`` (a run keeps its own)
are never removed. Retrieval can also prefer graded auctions without deleting
anything: see :data:`GRADED_POLICIES`.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sale_graph.memory.chroma import max_batch, scan

DAY_S = 86_400.0

GradedPolicy = Literal["any", "first", "only"]
GRADED_POLICIES: tuple[str, ...] = ("any", "first", "only")
"""How retrieval treats auctions by outcome: ``any`` (the method's order: similarity, a passed
winner before an unknown one among equals), ``first`` (pairs from graded auctions, outcome
known, before pairs from unlabelled ones), ``only`` (unlabelled auctions are not retrieved)."""


@dataclass(frozen=True)
class AuctionAge:
    """What retention needs to know of one stored auction."""

    auction_id: str
    timestamp: float
    outcome: str

    @property
    def graded(self) -> bool:
        """Whether the auction's outcome is known (passed or failed)."""
        return self.outcome != "unknown"


@dataclass(frozen=True)
class PruneResult:
    """What a prune removed (or, with ``dry_run``, would remove) and what it kept."""

    auctions: int
    unlabelled: int
    graded: int
    bids: int
    kept: int
    limits: str
    dry_run: bool = False

    def note(self) -> str:
        """One line for the run's notes and the CLI."""
        verb = "would prune" if self.dry_run else "pruned"
        return (f"memory retention ({self.limits}): {verb} {self.auctions} auction(s) ({self.unlabelled} unlabelled, "
                f"{self.graded} graded), {self.bids} bid(s); {self.kept} auction(s) kept")


def limits_text(max_auctions: int | None, max_age_days: float | None) -> str:
    """The limits in words, e.g. ``max_auctions=500, max_age_days=30``."""
    parts = []
    if max_auctions is not None:
        parts.append(f"max_auctions={max_auctions}")
    if max_age_days is not None:
        parts.append(f"max_age_days={max_age_days:g}")
    return ", ".join(parts) or "no limit"


def check_limits(max_auctions: int | None, max_age_days: float | None) -> None:
    """Raise ``ValueError`` for a limit that is not positive.

    Args:
        max_auctions: the most auctions to keep (``None``: no count limit).
        max_age_days: the oldest auction to keep, in days (``None``: no age limit).
    """
    if max_auctions is not None and (isinstance(max_auctions, bool) or not isinstance(max_auctions, int) or max_auctions < 1):
        raise ValueError(f"max_auctions must be a positive integer, got {max_auctions!r}")
    if max_age_days is not None and (isinstance(max_age_days, bool) or not isinstance(max_age_days, (int, float))
                                     or not max_age_days > 0):
        raise ValueError(f"max_age_days must be a positive number of days, got {max_age_days!r}")


def choose_pruned(
    auctions: Sequence[AuctionAge],
    max_auctions: int | None,
    max_age_days: float | None,
    *,
    now: float,
    keep: Collection[str] = (),
) -> list[AuctionAge]:
    """The auctions a prune removes (pure): those past the age limit, then the oldest unlabelled, then the oldest graded.

    Args:
        auctions: every stored auction (or, with no count limit, at least every one past the age limit).
        max_auctions: the most auctions to keep.
        max_age_days: the oldest auction to keep, in days.
        now: the current time (seconds since the epoch).
        keep: auction ids never removed.

    Returns:
        The auctions to remove, oldest first within each reason.
    """
    check_limits(max_auctions, max_age_days)
    cutoff = now - max_age_days * DAY_S if max_age_days is not None else None
    removable = [a for a in auctions if a.auction_id not in keep]
    gone = sorted((a for a in removable if cutoff is not None and a.timestamp < cutoff), key=lambda a: (a.timestamp, a.auction_id))
    if max_auctions is not None:
        left = len(auctions) - len(gone)
        ids = {a.auction_id for a in gone}
        rest = sorted((a for a in removable if a.auction_id not in ids), key=lambda a: (a.graded, a.timestamp, a.auction_id))
        gone += rest[: max(0, left - max_auctions)]
    return gone


def _ages(entries: Any) -> list[AuctionAge]:
    return [AuctionAge(str(i), float(m.get("timestamp", 0.0)), str(m.get("outcome", "unknown"))) for i, _d, m in entries]


def prune_collections(
    client: Any,
    tasks: Any,
    strategies: Any,
    max_auctions: int | None,
    max_age_days: float | None,
    *,
    keep: Collection[str] = (),
    now: float | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Apply the limits to the memory's two Chroma collections (see :func:`choose_pruned` for the order).

    Reads only what it needs: with a count limit the whole tasks collection's
    metadata when it holds more auctions than the limit, else only the auctions
    past the age limit (a ``where`` query on the timestamp).

    Args:
        client: the Chroma client (for its batch size).
        tasks: the tasks collection.
        strategies: the strategies (bids) collection.
        max_auctions: the most auctions to keep.
        max_age_days: the oldest auction to keep, in days.
        keep: auction ids never removed.
        now: the current time (default: now).
        dry_run: count what would go, remove nothing.

    Returns:
        What was removed and kept.
    """
    check_limits(max_auctions, max_age_days)
    now = time.time() if now is None else now
    total = tasks.count()
    if max_auctions is not None and total > max_auctions:
        candidates = _ages(scan(tasks, ["metadatas"]))
        count_limit = max_auctions
    elif max_age_days is not None and total:
        old = tasks.get(where={"timestamp": {"$lt": now - max_age_days * DAY_S}}, include=["metadatas"])
        candidates = _ages(zip(old["ids"], [None] * len(old["ids"]), old["metadatas"], strict=True))
        count_limit = None
    else:
        candidates, count_limit = [], None
    gone = choose_pruned(candidates, count_limit, max_age_days, now=now, keep=keep)
    ids = [a.auction_id for a in gone]
    batch = max(1, min(1000, max_batch(client)))
    bids = 0
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        bid_ids = strategies.get(where={"auction_id": {"$in": chunk}}, include=[])["ids"]
        bids += len(bid_ids)
        if dry_run:
            continue
        # The bids first: an interrupted prune leaves an auction without bids, never bids without their auction.
        for at in range(0, len(bid_ids), batch):
            strategies.delete(ids=bid_ids[at : at + batch])
        tasks.delete(ids=chunk)
    graded = sum(a.graded for a in gone)
    return PruneResult(auctions=len(ids), unlabelled=len(ids) - graded, graded=graded, bids=bids, kept=total - len(ids),
                       limits=limits_text(max_auctions, max_age_days), dry_run=dry_run)
