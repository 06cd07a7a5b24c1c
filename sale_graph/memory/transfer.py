"""The memory's JSON-lines export format: writing a whole memory out and reading it back.

Line 1 is a header (``{"kind": "header", "format": "sale-graph-memory",
"version": 1}``); then each auction line (``"kind": "auction"``) is followed by
its bids (``"kind": "strategy"``, every :class:`StrategyRecord` field), in a
deterministic order, so export -> import -> export is byte-identical.
An auction line carries ``degraded`` (bool) and ``degraded_reason`` (the
auction went on below its jury quorum); files written before these fields
existed import as not degraded, and readers ignore them otherwise, so the
format version stays 1.
Embeddings are not exported: an import re-embeds the task texts, which also
lets a memory move to another embedder. This module knows the file format
only; :class:`~sale_graph.memory.AuctionMemory` reads and writes the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sale_graph.memory.errors import MemoryStoreError
from sale_graph.memory.records import OUTCOMES, ROUNDS, StrategyRecord, require_finite
from sale_graph.storage.jsonl import iter_jsonl

EXPORT_FORMAT = "sale-graph-memory"
EXPORT_VERSION = 1

AUCTION_FIELDS: tuple[str, ...] = ("task_id", "domain", "timestamp", "outcome", "degraded", "degraded_reason")
"""The fields of an auction besides its id and task text (stored as task-entry metadata)."""

TaskEntry = tuple[str, str | None, Mapping[str, Any]]
"""One entry of the tasks collection: (auction id, task text, metadata)."""


def dumps(data: Mapping[str, Any]) -> str:
    """One export line: sorted keys, UTF-8 kept as is, no NaN (so exports compare byte for byte)."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, allow_nan=False)


def auction_lines(task_entries: Iterable[TaskEntry]) -> list[dict[str, Any]]:
    """The auction lines of an export, oldest auction first (ties by id).

    Args:
        task_entries: the entries of the tasks collection.

    Returns:
        One ``"kind": "auction"`` dict per auction.
    """
    auctions: dict[str, dict[str, Any]] = {}
    for aid, doc, meta in task_entries:
        auctions[aid] = {
            "kind": "auction",
            "auction_id": aid,
            "task": doc or "",
            "task_id": str(meta.get("task_id", "")),
            "domain": str(meta.get("domain", "")),
            "timestamp": float(meta.get("timestamp", 0.0)),
            "outcome": str(meta.get("outcome", "unknown")),
            "degraded": bool(meta.get("degraded", False)),
            "degraded_reason": str(meta.get("degraded_reason", "")),
        }
    return sorted(auctions.values(), key=lambda a: (a["timestamp"], a["auction_id"]))


def write_export(path: Path, bids: Iterable[StrategyRecord], task_entries: Iterable[TaskEntry]) -> int:
    """Write an export file (through a temporary file, so a failure leaves no half-written export).

    Args:
        path: the file to write.
        bids: every stored bid.
        task_entries: every entry of the tasks collection.

    Returns:
        The number of bids written.

    Raises:
        MemoryStoreError: some bids belong to no stored auction (nothing is written).
    """
    bids_by_auction: dict[str, list[StrategyRecord]] = {}
    for rec in bids:
        bids_by_auction.setdefault(rec.auction_id, []).append(rec)
    auctions = auction_lines(task_entries)
    known = {a["auction_id"] for a in auctions}
    orphans = sorted(set(bids_by_auction) - known)
    if orphans:
        raise MemoryStoreError(
            f"{len(orphans)} auction(s) have bids but no task entry (e.g. {orphans[0]!r}); "
            f"re-record them with record_auction before exporting"
        )
    n = 0
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(dumps({"kind": "header", "format": EXPORT_FORMAT, "version": EXPORT_VERSION}) + "\n")
        for auction in auctions:
            fh.write(dumps(auction) + "\n")
            for rec in sorted(bids_by_auction.get(auction["auction_id"], []), key=lambda b: (ROUNDS.index(b.round), b.agent)):
                fh.write(dumps({"kind": "strategy", **rec.to_dict()}) + "\n")
                n += 1
    tmp.replace(path)
    return n


def read_export(path: Path) -> tuple[dict[str, dict[str, Any]], list[StrategyRecord]]:
    """Read and validate a whole export file before anything is written to a store.

    Args:
        path: the export file.

    Returns:
        The auctions (auction id -> task and :data:`AUCTION_FIELDS`; auctions
        that only appear in bid lines included, not degraded) and the bids.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        MemoryStoreError: a line is not valid (the error names the file and line),
            or a bid's task text differs from its auction line's.
    """
    if not path.is_file():
        raise FileNotFoundError(f"memory export {str(path)!r} does not exist")
    auctions: dict[str, dict[str, Any]] = {}
    bids: list[StrategyRecord] = []
    with path.open(encoding="utf-8") as fh:
        for where, _lineno, data in iter_jsonl(fh, path, MemoryStoreError):
            kind = data.pop("kind", None) if isinstance(data, dict) else None
            try:
                if kind == "header":
                    _check_header(data)
                elif kind == "auction":
                    auctions[data["auction_id"]] = _auction_entry(data)
                elif kind == "strategy":
                    bids.append(_strategy_line(data))
                else:
                    raise ValueError(f"unknown line kind {kind!r}; expected header, auction or strategy")
            except (ValueError, TypeError) as exc:
                raise MemoryStoreError(f"{where}: {exc}") from exc
    _add_auctions_of_bids(path, auctions, bids)
    return auctions, bids


def _check_header(data: Mapping[str, Any]) -> None:
    """Refuse a header line of another format or version."""
    if data.get("format") != EXPORT_FORMAT or data.get("version") != EXPORT_VERSION:
        raise ValueError(
            f"header says format {data.get('format')!r} version {data.get('version')!r}; "
            f"this reader takes {EXPORT_FORMAT!r} version {EXPORT_VERSION}"
        )


def _auction_entry(data: Mapping[str, Any]) -> dict[str, Any]:
    """The stored fields of one auction line (its ``auction_id`` is the caller's key)."""
    outcome = data.get("outcome", "unknown")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
    if not data.get("auction_id") or not data.get("task"):
        raise ValueError("auction line needs a non-empty auction_id and task")
    if not isinstance(data["auction_id"], str):
        raise ValueError(f"auction_id must be a string, got {data['auction_id']!r}")
    degraded, reason = data.get("degraded", False), data.get("degraded_reason", "")
    if not isinstance(degraded, bool):
        raise ValueError(f"degraded must be true or false, got {degraded!r}")
    if not isinstance(reason, str) or (reason and not degraded):
        raise ValueError(f"degraded_reason must be a string, and empty unless degraded is true, got {reason!r}")
    return {
        "task": str(data["task"]),
        "task_id": str(data.get("task_id", "")),
        "domain": str(data.get("domain", "")),
        # The caller prefixes FILE:LINE to the message; "where" names the line's kind only.
        "timestamp": require_finite("timestamp", data.get("timestamp", 0.0), "auction line"),
        "outcome": outcome,
        "degraded": degraded,
        "degraded_reason": reason,
    }


def _strategy_line(data: Mapping[str, Any]) -> StrategyRecord:
    """The bid of one strategy line; it must name its auction and task."""
    rec = StrategyRecord.from_dict(data)
    if not rec.auction_id or not rec.task:
        raise ValueError("strategy line needs a non-empty auction_id and task")
    return rec


def _add_auctions_of_bids(path: Path, auctions: dict[str, dict[str, Any]], bids: list[StrategyRecord]) -> None:
    """Add the auctions that only appear in bid lines (dated by their first bid); check task texts agree."""
    first_seen: dict[str, float] = {}
    for rec in bids:
        first_seen[rec.auction_id] = min(rec.timestamp, first_seen.get(rec.auction_id, rec.timestamp))
    for rec in bids:
        entry = auctions.setdefault(
            rec.auction_id,
            {
                "task": rec.task,
                "task_id": rec.task_id,
                "domain": rec.domain,
                "timestamp": first_seen[rec.auction_id],
                "outcome": rec.outcome,
                "degraded": False,
                "degraded_reason": "",
            },
        )
        if entry["task"] != rec.task:
            raise MemoryStoreError(
                f"{path}: bid of agent {rec.agent!r} in auction {rec.auction_id!r} has a task text that "
                f"differs from its auction line; fix or drop one of them"
            )
