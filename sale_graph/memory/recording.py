"""Rules for recording one auction: its bids checked together, its outcome and labels resolved.

Pure functions behind :meth:`~sale_graph.memory.AuctionMemory.record_auction`:
the records must agree with the auction's arguments and with each other, and
what the arguments leave open (outcome, task id, domain) is taken from the
records or from what the store already holds for the auction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sale_graph.memory.records import Outcome, StrategyRecord, strategy_id


def checked_records(
    auction_id: str, task: str, task_id: str, domain: str, records: Sequence[StrategyRecord | Mapping[str, Any]]
) -> list[StrategyRecord]:
    """The records as :class:`StrategyRecord`, checked against the auction's arguments and each other.

    Args:
        auction_id: the auction's id.
        task: the auction's task text.
        task_id: the task id given for the auction ("" for none).
        domain: the domain given for the auction ("" for none).
        records: the bids, as records or :meth:`StrategyRecord.to_dict` dicts.

    Returns:
        The records, in order.

    Raises:
        ValueError: a record names another auction, task, task id or domain, or
            two records are the same agent's bid in the same round.
    """
    checked: list[StrategyRecord] = []
    for i, raw in enumerate(records):
        rec = raw if isinstance(raw, StrategyRecord) else StrategyRecord.from_dict(raw)
        for name, expected in (("auction_id", auction_id), ("task", task), ("task_id", task_id), ("domain", domain)):
            got = getattr(rec, name)
            if got and expected and got != expected:
                raise ValueError(
                    f"auction {auction_id!r}: record {i} (agent {rec.agent!r}) has {name}={got!r}, "
                    f"but record_auction was called with {name}={expected!r}"
                )
        checked.append(rec)
    seen: dict[str, int] = {}
    for i, rec in enumerate(checked):
        key = strategy_id(auction_id, rec.agent, rec.round)
        if key in seen:
            raise ValueError(
                f"auction {auction_id!r}: records {seen[key]} and {i} are both agent "
                f"{rec.agent!r}, round {rec.round!r}; an agent has one bid per round"
            )
        seen[key] = i
    return checked


def auction_outcome(
    auction_id: str, outcome: Outcome | None, old: Mapping[str, Any], records: Sequence[StrategyRecord]
) -> Outcome:
    """The auction's outcome: the one given, else the one stored if known, else the records' own, else "unknown".

    Args:
        auction_id: the auction's id, for messages.
        outcome: the outcome given for the auction, if any.
        old: the auction's stored task-entry metadata (empty when new).
        records: the auction's checked records.

    Returns:
        The outcome to store on the auction and all its bids.

    Raises:
        ValueError: no outcome is given or stored and the records disagree on theirs.
    """
    if outcome is not None:
        return outcome
    if old.get("outcome", "unknown") != "unknown":
        stored: Outcome = old["outcome"]
        return stored
    known = {r.outcome for r in records} - {"unknown"}
    if len(known) > 1:
        raise ValueError(
            f"auction {auction_id!r}: records disagree on the outcome {sorted(known)}; "
            f"the outcome belongs to the auction, pass outcome= explicitly"
        )
    return known.pop() if known else "unknown"


def auction_labels(
    auction_id: str, task_id: str, domain: str, old: Mapping[str, Any], records: Sequence[StrategyRecord]
) -> tuple[str, str]:
    """The auction's task id and domain: those given, else the records', else those stored.

    Args:
        auction_id: the auction's id, for messages.
        task_id: the task id given for the auction ("" for none).
        domain: the domain given for the auction ("" for none).
        old: the auction's stored task-entry metadata (empty when new).
        records: the auction's checked records.

    Returns:
        The task id and the domain.

    Raises:
        ValueError: the records disagree on the task id or the domain.
    """
    task_id = task_id or next((r.task_id for r in records if r.task_id), "") or str(old.get("task_id", ""))
    domain = domain or next((r.domain for r in records if r.domain), "") or str(old.get("domain", ""))
    for name, values in (("task_id", {r.task_id for r in records} - {""}), ("domain", {r.domain for r in records} - {""})):
        if len(values) > 1:
            raise ValueError(f"auction {auction_id!r}: records disagree on {name}: {sorted(values)}")
    return task_id, domain


def auction_degraded(auction_id: str, degraded: bool | None, reason: str, old: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the auction went on below its jury quorum, and why: as given, else as stored, else not.

    Args:
        auction_id: the auction's id, for messages.
        degraded: the flag given for the auction; ``None`` keeps what is stored
            (``False`` for a new auction).
        reason: why it was degraded (the graph's ``degraded["reason"]``); only
            with ``degraded=True``.
        old: the auction's stored task-entry metadata (empty when new).

    Returns:
        The flag and the reason ("" when not degraded) to store on the auction.

    Raises:
        ValueError: ``degraded`` is not a bool or None, ``reason`` is not a string,
            or a reason is given without ``degraded=True``.
    """
    if degraded is not None and not isinstance(degraded, bool):
        raise ValueError(f"auction {auction_id!r}: degraded must be True, False or None, got {degraded!r}")
    if not isinstance(reason, str):
        raise ValueError(f"auction {auction_id!r}: degraded_reason must be a string, got {reason!r}")
    if reason and degraded is not True:
        raise ValueError(f"auction {auction_id!r}: degraded_reason {reason!r} given without degraded=True")
    if degraded is None:
        return bool(old.get("degraded", False)), str(old.get("degraded_reason", ""))
    return degraded, reason if degraded else ""
