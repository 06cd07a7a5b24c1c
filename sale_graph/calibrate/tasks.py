"""The calibration's tasks: a text file (one task per line) or a JSONL file (one task object per line).

A ``.jsonl`` file holds one JSON object per line with the task's text in ``text`` (or
``task``), and optionally ``id`` and ``domain``: the bench's task files
(:mod:`sale_graph.bench.tasks.schema`) are such files, and their gold answers and tests
are not needed (the calibration executes nothing). Any other file is plain text, one
task per non-blank line. A task without an ``id`` gets one from its text
(``t-`` and 12 hex digits of its SHA-256; a repeated task adds ``-2``, ``-3``...), so a
task keeps its id when lines are added around it.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sale_graph.calibrate.errors import CalibrationError
from sale_graph.storage.jsonl import iter_jsonl


@dataclass(frozen=True)
class CalibrationTask:
    """One unlabelled task: its id, its text and its domain (``None``: the auction's default tools)."""

    id: str
    text: str
    domain: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The task as a market record's ``task`` object."""
        return {"id": self.id, "text": self.text, **({"domain": self.domain} if self.domain else {})}


def text_id(text: str) -> str:
    """The id of a task given without one: ``t-`` and the first 12 hex digits of its text's SHA-256."""
    return "t-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def tasks_digest(tasks: Iterable[CalibrationTask]) -> str:
    """SHA-256 of the tasks (ids, texts, domains): the provenance of tasks given as Python objects."""
    payload = json.dumps([t.to_dict() for t in tasks], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def tasks_from_texts(texts: Iterable[str], domain: str | None = None, where: str = "tasks") -> list[CalibrationTask]:
    """Tasks from their texts, each with an id from its text (repeats numbered)."""
    out: list[CalibrationTask] = []
    seen: dict[str, int] = {}
    for k, raw in enumerate(texts, 1):
        if not isinstance(raw, str):
            raise CalibrationError(f"{where}: task {k} is a {type(raw).__name__}, not a string")
        text = raw.strip()
        if not text:
            continue
        base = text_id(text)
        seen[base] = seen.get(base, 0) + 1
        out.append(CalibrationTask(base if seen[base] == 1 else f"{base}-{seen[base]}", text, domain))
    return out


def _jsonl_task(data: Any, where: str, domain: str | None) -> CalibrationTask:
    if not isinstance(data, dict):
        raise CalibrationError(f"{where}: a task must be a JSON object with a 'text' field, got {type(data).__name__}")
    text = data.get("text", data.get("task"))
    if not isinstance(text, str) or not text.strip():
        raise CalibrationError(f"{where}: the task needs a non-empty 'text' (or 'task') string")
    task_id = data.get("id")
    if task_id is not None and (isinstance(task_id, bool) or not isinstance(task_id, (str, int))):
        raise CalibrationError(f"{where}: field 'id' must be a string or an integer, got {task_id!r}")
    task_domain = data.get("domain", domain)
    if task_domain is not None and not isinstance(task_domain, str):
        raise CalibrationError(f"{where}: field 'domain' must be a string, got {task_domain!r}")
    return CalibrationTask(str(task_id) if task_id is not None else text_id(text.strip()), text.strip(), task_domain)


def read_task_file(path: str | Path, domain: str | None = None) -> tuple[list[CalibrationTask], str]:
    """The tasks of a file and the SHA-256 of its bytes (see the module docstring for the formats).

    Args:
        path: a ``.jsonl`` task file, or a text file with one task per line.
        domain: the domain of tasks that name none (``search``, ``coding``...; it picks the tools the bid prompt names).

    Raises:
        CalibrationError: the file is missing, not UTF-8, malformed (naming the line), has a
            repeated id, or holds no task.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise CalibrationError(f"task file {str(p)!r} does not exist")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CalibrationError(f"task file {str(p)!r} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if p.suffix == ".jsonl":
        tasks: list[CalibrationTask] = []
        lines: dict[str, str] = {}
        for where, _, value in iter_jsonl(io.StringIO(text), p, CalibrationError):
            task = _jsonl_task(value, where, domain)
            if task.id in lines:
                raise CalibrationError(f"{where}: task id {task.id!r} repeats the one on {lines[task.id]}")
            lines[task.id] = where
            tasks.append(task)
    else:
        tasks = tasks_from_texts(text.splitlines(), domain, str(p))
    if not tasks:
        raise CalibrationError(f"task file {str(p)!r} holds no task (one per line, or JSONL objects with a 'text' field)")
    return tasks, hashlib.sha256(data).hexdigest()
