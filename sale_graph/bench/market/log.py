"""The market log: an append-only JSONL file, one record per task, safe against crashes.

Every record is written as one line followed by ``flush`` and ``os.fsync``, so a
finished task survives a crash or Ctrl-C. A crash in the middle of a write can
leave a partial last line (no newline, or not valid JSON): :func:`repair_log`
detects it and truncates the file back to the last complete record, and
:func:`read_log` reports it. A malformed line *before* the end is never
skipped silently: it is an error naming the file and line.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sale_graph.bench.market.errors import LogError


@dataclass
class LogContents:
    """The records of a log and whether a partial last line was found (and ignored)."""

    records: list[dict[str, Any]]
    partial_tail_bytes: int = 0


def _parse(path: Path, lineno: int, line: bytes) -> dict[str, Any]:
    try:
        rec = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LogError(f"{path}:{lineno}: not valid JSON ({exc}); the log is damaged before its last line") from exc
    if not isinstance(rec, dict) or not isinstance(rec.get("task"), dict) or "id" not in rec["task"]:
        raise LogError(f"{path}:{lineno}: not a market record (needs a 'task' object with an 'id')")
    return rec


def record_key(rec: dict[str, Any]) -> str:
    """What makes a record unique in a log: the task id, and for a live record its task order as well.

    A market log (`sale bench record`) has one record per task; a live log
    (`sale bench live --orders K`) one per task and order.
    """
    tid = str(rec["task"]["id"])
    if rec.get("kind") == "live":
        return f"{tid} (live, order {rec.get('order', 0)})"
    return tid


def read_log(path: str | Path, *, allow_partial_tail: bool = True) -> LogContents:
    """Read every complete record; a partial last line is ignored (and counted) or, if not allowed, an error.

    Duplicate records (:func:`record_key`: a task id, or a task id and order for a
    live record) are an error naming both lines (`sale bench record` and
    `sale bench live` never write one; a hand-merged log might).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise LogError(f"market log {str(p)!r} does not exist; record one with `sale bench record`")
    data = p.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    partial = 0
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        rec = _parse(p, lineno, line)
        key = record_key(rec)
        if key in seen:
            raise LogError(f"{p}:{lineno}: task {key!r} recorded twice (first on line {seen[key]})")
        seen[key] = lineno
        records.append(rec)
    if tail.strip():
        try:
            json.loads(tail)
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
        partial = len(tail)
        if not allow_partial_tail:
            raise LogError(f"{p}:{len(lines) + 1}: partial last line ({partial} bytes); run `sale bench record` to repair")
    return LogContents(records, partial)


def repair_log(path: str | Path) -> int:
    r"""Truncate a partial last line (an interrupted write); return how many bytes were removed.

    A last line without its newline is partial even if it parses: the writer
    always ends a record with ``\n`` in the same write, so a missing newline
    means the write did not finish.
    """
    p = Path(path)
    if not p.exists():
        return 0
    size = p.stat().st_size
    if size == 0:
        return 0
    with p.open("rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return 0
        cut = data.rfind(b"\n") + 1  # 0 when there is no complete line at all
        fh.truncate(cut)
        fh.flush()
        os.fsync(fh.fileno())
    return size - cut


class LogWriter:
    """Appends records to a log, one fsync'd line each; safe to call from several threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fh = self.path.open("ab")

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line and force it to disk before returning."""
        line = json.dumps(record, ensure_ascii=False, default=str).encode("utf-8") + b"\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            if not self._fh.closed:
                self._fh.close()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
