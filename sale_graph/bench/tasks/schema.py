r"""Benchmark tasks: the schema, its validation, JSONL files, bins and the dev/test split.

A task is one JSON object per line::

    {"id": "fanoutqa-leaf-bca4ab7d1f4df703", "domain": "search", "text": "Who ...?",
     "gold": ["Pat Burrell"], "human_minutes": null, "bin": 1,
     "bin_source": "proxy:fanoutqa-evidence-pages", "source": "fanoutqa 1.1.1 dev",
     "split": "test", "meta": {"proxy_minutes": 0.3}}

    {"id": "humaneval-0", "domain": "coding", "text": "Complete ...", "tests": "def check(candidate): ...",
     "entry_point": "has_close_elements", "code_prefix": "from typing import List\n\ndef ...", ...}

Fields:

* ``id`` (str, unique in a file), ``domain`` (``"search"`` or ``"coding"``), ``text`` (non-empty);
* search: ``gold``, a non-empty list of accepted answer aliases (graded with
  :func:`sale_graph.executor.grading.grade_answer`);
* coding: ``tests`` (HumanEval ``check(candidate)`` or assert statements) and ``entry_point``;
  optional ``code_prefix`` (code placed before an answer that does not define the entry
  point itself, e.g. HumanEval's prompt, so a body-only completion still runs);
* ``human_minutes`` (optional float): a measured human solution time; when present it decides the bin;
* ``bin`` (0-4): index into :data:`BINS`, the paper's five bins of human solution time;
* ``bin_source``: ``"human"`` or ``"proxy:<name>"`` naming the documented proxy
  (see :mod:`sale_graph.bench.tasks.datasets`); every report states it;
* ``source`` (free text: dataset and version), ``split`` (``"dev"`` or ``"test"``, see :func:`split_of`),
  ``meta`` (optional object, e.g. the proxy's estimated minutes);
* ``family`` (optional str): tasks of one family share a split, whatever their ids (a FanOutQA leaf
  question and its multi-hop parent: a router trained on one must not be tested on the other);
  the split is derived from the family when ``split`` is absent, and a file whose family straddles
  the split is an error (:func:`check_families`).

Errors name the file, the line and the field at fault (:class:`TaskFileError`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sale_graph.errors import SaleError
from sale_graph.storage.jsonl import iter_jsonl

Domain = Literal["search", "coding"]
Split = Literal["dev", "test"]

#: The paper's five bins of human solution time, in minutes: [lo, hi).
BINS: tuple[tuple[float, float], ...] = ((0.0, 0.1), (0.1, 0.5), (0.5, 2.5), (2.5, 12.5), (12.5, 60.0))
BIN_LABELS: tuple[str, ...] = ("0-0.1", "0.1-0.5", "0.5-2.5", "2.5-12.5", "12.5-60")
DOMAINS: tuple[str, ...] = ("search", "coding")

#: Default share of tasks in the dev split (where weights and text routers are trained).
DEFAULT_DEV_FRACTION = 0.3

_FIELDS = {
    "id", "domain", "text", "gold", "tests", "entry_point", "code_prefix", "human_minutes",
    "bin", "bin_source", "source", "split", "meta", "family",
}


class TaskFileError(SaleError, ValueError):
    """A task (or a task file) is malformed; the message names the file, line and field."""


def bin_of_minutes(minutes: float) -> int:
    """The bin index (0-4) of a solution time in minutes; times of 60 minutes or more go to the last bin."""
    if not isinstance(minutes, (int, float)) or isinstance(minutes, bool) or not math.isfinite(minutes) or minutes < 0:
        raise ValueError(f"solution time must be a finite number of minutes >= 0, got {minutes!r}")
    for i, (_, hi) in enumerate(BINS):
        if minutes < hi:
            return i
    return len(BINS) - 1


def split_of(task_id: str, dev_fraction: float = DEFAULT_DEV_FRACTION, salt: str = "sale-bench") -> Split:
    """Deterministic dev/test assignment by hash of the task id.

    The first 8 bytes of ``sha256(salt + ":" + id)`` read as a fraction of 2**64
    put the task in dev when below ``dev_fraction``: the same id always lands in
    the same split, whatever file or order it comes in, so splits are
    reproducible and stable when tasks are added.
    """
    if not 0.0 <= dev_fraction <= 1.0:
        raise ValueError(f"dev_fraction must be within [0, 1], got {dev_fraction!r}")
    digest = hashlib.sha256(f"{salt}:{task_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    return "dev" if u < dev_fraction else "test"


@dataclass
class Task:
    """One benchmark task (see the module docstring for the fields)."""

    id: str
    domain: Domain
    text: str
    bin: int
    bin_source: str
    source: str
    split: Split
    gold: list[str] | None = None
    tests: str | None = None
    entry_point: str | None = None
    code_prefix: str | None = None
    human_minutes: float | None = None
    family: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``None`` fields left out) that :func:`task_from_dict` reads back."""
        out: dict[str, Any] = {
            "id": self.id, "domain": self.domain, "text": self.text, "bin": self.bin,
            "bin_source": self.bin_source, "source": self.source, "split": self.split,
        }
        for key in ("gold", "tests", "entry_point", "code_prefix", "human_minutes", "family"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.meta:
            out["meta"] = self.meta
        return out

    @property
    def bin_label(self) -> str:
        """The bin as the paper writes it, e.g. ``"0.5-2.5"`` (minutes)."""
        return BIN_LABELS[self.bin]


def _err(where: str, field_name: str, msg: str) -> TaskFileError:
    return TaskFileError(f"{where}: field {field_name!r}: {msg}")


def _str_field(data: Mapping[str, Any], key: str, where: str, required: bool = True) -> str | None:
    if key not in data or data[key] is None:
        if required:
            raise _err(where, key, "missing; it is required")
        return None
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise _err(where, key, f"must be a non-empty string, got {value!r}"[:200])
    return value


def _check_object(data: Any, where: str) -> None:
    """A task is a JSON object with only known fields."""
    if not isinstance(data, dict):
        raise TaskFileError(f"{where}: a task must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise TaskFileError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_FIELDS))}")


def _search_fields(data: Mapping[str, Any], where: str) -> list[str]:
    """The gold aliases of a search task (and no coding fields)."""
    raw_gold = data.get("gold")
    if not isinstance(raw_gold, list) or not raw_gold:
        raise _err(where, "gold", "a search task needs a non-empty list of accepted answers (aliases)")
    for g in raw_gold:
        if not isinstance(g, str) or not g.strip():
            raise _err(where, "gold", f"every alias must be a non-empty string, got {g!r}")
    for key in ("tests", "entry_point"):
        if data.get(key) is not None:
            raise _err(where, key, "only coding tasks have tests/entry_point")
    return list(raw_gold)


def _coding_fields(data: Mapping[str, Any], where: str) -> tuple[str | None, str | None, str | None]:
    """``tests``, ``entry_point`` and ``code_prefix`` of a coding task (and no gold)."""
    tests = _str_field(data, "tests", where)
    entry_point = _str_field(data, "entry_point", where)
    if entry_point is not None and not entry_point.isidentifier():
        raise _err(where, "entry_point", f"must be a Python identifier, got {entry_point!r}")
    code_prefix = _str_field(data, "code_prefix", where, required=False)
    if data.get("gold") is not None:
        raise _err(where, "gold", "only search tasks have gold answers; coding tasks are checked by tests")
    return tests, entry_point, code_prefix


def _bin_fields(data: Mapping[str, Any], where: str) -> tuple[int, str, float | None]:
    """The bin, how it was decided and the human minutes (when given), checked against each other."""
    minutes = data.get("human_minutes")
    if minutes is not None:
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not math.isfinite(minutes) or minutes < 0:
            raise _err(where, "human_minutes", f"must be a number of minutes >= 0, got {minutes!r}")
        minutes = float(minutes)
    if "bin" in data and data["bin"] is not None:
        b = data["bin"]
        if isinstance(b, bool) or not isinstance(b, int) or not 0 <= b < len(BINS):
            raise _err(where, "bin", f"must be an integer 0-{len(BINS) - 1} (bins {', '.join(BIN_LABELS)} minutes), got {b!r}")
        if minutes is not None and bin_of_minutes(minutes) != b:
            raise _err(where, "bin", f"{b} disagrees with human_minutes={minutes:g} (bin {bin_of_minutes(minutes)})")
    elif minutes is not None:
        b = bin_of_minutes(minutes)
    else:
        raise _err(where, "bin", "missing; give 'bin' (0-4) or 'human_minutes'")
    bin_source = data.get("bin_source")
    if bin_source is None:
        if minutes is None:
            raise _err(where, "bin_source", "missing; say 'human' or 'proxy:<name>' (how the bin was decided)")
        bin_source = "human"
    if not isinstance(bin_source, str) or not (bin_source == "human" or bin_source.startswith("proxy:")):
        raise _err(where, "bin_source", f"must be 'human' or 'proxy:<name>', got {bin_source!r}")
    if bin_source == "human" and minutes is None:
        raise _err(where, "bin_source", "'human' needs human_minutes")
    return int(b), bin_source, minutes


def _split_field(data: Mapping[str, Any], where: str, key: str, dev_fraction: float, fill_split: bool) -> str:
    """The task's split; when absent, :func:`split_of` its family (or id)."""
    split = data.get("split")
    if split is None:
        if not fill_split:
            raise _err(where, "split", "missing; 'dev' or 'test'")
        split = split_of(key, dev_fraction)
    if split not in ("dev", "test"):
        raise _err(where, "split", f"must be 'dev' or 'test', got {split!r}")
    return str(split)


def task_from_dict(
    data: Any, where: str = "<task>", *, dev_fraction: float = DEFAULT_DEV_FRACTION, fill_split: bool = True
) -> Task:
    """Validate one task object and build a :class:`Task`.

    ``split`` may be left out (it is then :func:`split_of` the task's ``family``,
    or of its id when it has none, when ``fill_split``); ``bin`` may be left out
    when ``human_minutes`` is given (the bin is then computed and ``bin_source``
    set to ``"human"``). Every error names ``where`` (``file:line``) and the field.
    """
    _check_object(data, where)
    task_id = _str_field(data, "id", where)
    assert task_id is not None
    where = f"{where} (task {task_id!r})"
    domain = _str_field(data, "domain", where)
    if domain not in DOMAINS:
        raise _err(where, "domain", f"must be 'search' or 'coding', got {domain!r}")
    text = _str_field(data, "text", where)
    gold = tests = entry_point = code_prefix = None
    if domain == "search":
        gold = _search_fields(data, where)
    else:
        tests, entry_point, code_prefix = _coding_fields(data, where)
    b, bin_source, minutes = _bin_fields(data, where)
    source = data.get("source", "user")
    if not isinstance(source, str) or not source.strip():
        raise _err(where, "source", f"must be a non-empty string, got {source!r}")
    family = _str_field(data, "family", where, required=False)
    split = _split_field(data, where, family or task_id, dev_fraction, fill_split)
    meta = data.get("meta") or {}
    if not isinstance(meta, dict):
        raise _err(where, "meta", f"must be an object, got {type(meta).__name__}")
    return Task(
        id=task_id, domain=domain, text=text, bin=b, bin_source=bin_source, source=source,  # type: ignore[arg-type]
        split=split, gold=gold, tests=tests, entry_point=entry_point, code_prefix=code_prefix,  # type: ignore[arg-type]
        human_minutes=minutes, family=family, meta=dict(meta),
    )


def check_families(tasks: Iterable[Task], where: str = "<tasks>") -> None:
    """Every task family lies in one split (a FanOutQA leaf beside its parent question); else an error naming both."""
    first: dict[str, Task] = {}
    for task in tasks:
        if task.family is None:
            continue
        other = first.setdefault(task.family, task)
        if other.split != task.split:
            raise TaskFileError(
                f"{where}: field 'split': task {task.id!r} is in {task.split} but {other.id!r} of the same family "
                f"{task.family!r} is in {other.split}; a family must stay in one split (leave 'split' out to derive it)"
            )


def read_tasks(path: str | Path, *, dev_fraction: float = DEFAULT_DEV_FRACTION) -> list[Task]:
    """Read and validate a task JSONL file (blank lines allowed); duplicate ids are an error."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise TaskFileError(f"task file {str(p)!r} does not exist; export one with `sale bench tasks --out FILE`")
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    with p.open(encoding="utf-8") as fh:
        try:
            for where, lineno, data in iter_jsonl(fh, p, TaskFileError):
                task = task_from_dict(data, where, dev_fraction=dev_fraction)
                if task.id in seen:
                    raise TaskFileError(f"{where}: field 'id': duplicate id {task.id!r} (first on line {seen[task.id]})")
                seen[task.id] = lineno
                tasks.append(task)
        except UnicodeDecodeError as exc:
            raise TaskFileError(f"task file {str(p)!r} is not UTF-8 text ({exc.reason}); save it as UTF-8 JSONL") from exc
    if not tasks:
        raise TaskFileError(f"{p}: no tasks in the file")
    check_families(tasks, str(p))
    return tasks


def write_tasks(tasks: Iterable[Task], path: str | Path) -> int:
    """Write tasks as JSONL (one object per line); returns how many were written."""
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with p.open("w", encoding="utf-8") as fh:
        for task in tasks:
            fh.write(json.dumps(task.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    return n
