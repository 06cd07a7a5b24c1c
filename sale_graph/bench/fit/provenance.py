"""Which tasks weights were fitted on, and the report's refusal to evaluate on them.

A weights file written by ``sale bench fit`` records, in ``meta.fit``: the split it was
fitted on, how many tasks, ``task_ids_sha256`` (one hash of the sorted task ids, to
name the set) and ``task_digests`` (a 12-hex-digit SHA-256 prefix per task id, sorted,
so that membership can be tested without shipping the ids). ``sale bench report``
refuses weights fitted on any task it evaluates on (:class:`LeakageError`) unless it
is told to go on (``--allow-fitted-on-eval``), and then the report is stamped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sale_graph.bench.market.market import Market
from sale_graph.errors import SaleError


class LeakageError(SaleError, ValueError):
    """Weights were fitted on tasks the report evaluates on."""


def task_digest(task_id: str) -> str:
    """A short, stable digest of one task id (12 hex digits of its SHA-256)."""
    return hashlib.sha256(task_id.encode()).hexdigest()[:12]


def ids_sha256(task_ids: Iterable[str]) -> str:
    """One SHA-256 of the sorted task ids (newline-joined): names the set a fit used."""
    return hashlib.sha256("\n".join(sorted(task_ids)).encode()).hexdigest()


def fit_record(market: Market, split: str, task_ids: Sequence[str]) -> dict[str, Any]:
    """The ``meta.fit`` block of a weights file: split, count, set hash and per-task digests."""
    chosen = set(task_ids)
    families = sorted({f for f, t in zip(market.families, market.task_ids, strict=True) if t in chosen})
    return {"split": split, "tasks": len(task_ids), "task_ids_sha256": ids_sha256(task_ids),
            "task_digests": sorted(task_digest(t) for t in task_ids),
            "family_digests": sorted(task_digest(f) for f in families)}


def read_fit_record(path: str | Path | None) -> dict[str, Any] | None:
    """``meta.fit`` of a weights file, or ``None`` for a file without one (hand-written weights, defaults)."""
    if path is None:
        return None
    p = Path(path).expanduser()
    if p.suffix != ".json":
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    fit = (data.get("meta") or {}).get("fit") if isinstance(data, dict) else None
    return fit if isinstance(fit, dict) else None


def overlap(fit: dict[str, Any] | None, eval_ids: Sequence[str], eval_families: Sequence[str]) -> dict[str, Any]:
    """How many evaluated tasks (or task families) the weights were fitted on; ``known`` is False without a record."""
    if not fit:
        return {"known": False, "tasks": 0, "families": 0}
    fitted = set(fit.get("task_digests", []))
    fitted_families = set(fit.get("family_digests", []))
    tasks = sum(task_digest(t) in fitted for t in eval_ids)
    families = sum(task_digest(f) in fitted_families for f in set(eval_families))
    return {"known": True, "tasks": int(tasks), "families": int(families), "fit_split": fit.get("split"),
            "fit_tasks": fit.get("tasks"), "task_ids_sha256": fit.get("task_ids_sha256")}


def check_leakage(name: str, path: str | Path | None, market: Market, eval_idx: Sequence[int], allow: bool) -> dict[str, Any]:
    """Refuse (or, with ``allow``, record) weights fitted on any evaluated task or task family.

    Returns the overlap record that goes into the report's ``meta.leakage``; raises
    :class:`LeakageError` naming the file, the fit's split and the counts otherwise.
    """
    ids = [market.task_ids[t] for t in eval_idx]
    fams = [market.families[t] for t in eval_idx]
    rec = overlap(read_fit_record(path), ids, fams)
    rec["weights"] = str(path) if path else None
    rec["overridden"] = False
    if rec["tasks"] or rec["families"]:
        if not allow:
            raise LeakageError(
                f"{name} weights {path} were fitted on the {rec.get('fit_split')} split and {rec['tasks']} of the "
                f"{len(ids)} tasks evaluated here ({rec['families']} task families) are among the tasks they were fitted "
                "on: the report would measure the fit, not the router. Evaluate on another split (fit on dev, report on "
                "test), or pass --allow-fitted-on-eval to go on (the report is then stamped)"
            )
        rec["overridden"] = True
    return rec
