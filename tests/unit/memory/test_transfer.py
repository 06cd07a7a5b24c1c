"""Export and import of the memory as JSON lines: exact round trip, whole-file validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sale_graph.memory import AuctionMemory, MemoryStoreError
from sale_graph.memory.transfer import read_export
from tests.unit.memory.helpers import bid

pytestmark = pytest.mark.disable_socket


def test_export_import_round_trip_is_exact(memory: AuctionMemory, tmp_path: Path) -> None:
    memory.record_auction("a2", "second task ünïcode", "coding", [bid("big", won=True, timestamp=2.5), bid("small", timestamp=2.5)])
    memory.record_auction(
        "a1", "first task", "search", [bid("big", won=True, timestamp=1.0), bid("small", round_="refined", timestamp=1.1)], task_id="q1"
    )
    memory.update_outcome("a1", "failed")
    memory.record_auction("a3", "orphan task with no bids", "", [])
    first = tmp_path / "one.jsonl"
    assert memory.export_jsonl(first) == 4
    before = memory.stats()

    memory.clear()
    assert (memory.count_auctions(), memory.count_strategies()) == (0, 0)
    assert memory.import_jsonl(first) == (3, 4)
    assert memory.import_jsonl(first) == (3, 4)  # idempotent
    assert (memory.count_auctions(), memory.count_strategies()) == (3, 4)
    second = tmp_path / "two.jsonl"
    memory.export_jsonl(second)
    assert first.read_bytes() == second.read_bytes()
    assert memory.stats() == before
    lines = [json.loads(x) for x in first.read_text(encoding="utf-8").splitlines()]
    assert [x["kind"] for x in lines] == ["header", "auction", "strategy", "strategy", "auction", "strategy", "strategy", "auction"]
    assert lines[1]["auction_id"] == "a1" and lines[1]["outcome"] == "failed"


def test_import_validates_whole_file_before_writing(memory: AuctionMemory, tmp_path: Path) -> None:
    good = bid("big", auction_id="a1", task="t").to_dict()
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps({"kind": "strategy", **good}) + "\n" + json.dumps({"kind": "strategy", **{**good, "round": "third"}}) + "\n"
    )
    with pytest.raises(MemoryStoreError, match=r"bad.jsonl:2: .*round must be one of"):
        memory.import_jsonl(path)
    assert memory.count_strategies() == 0
    with pytest.raises(FileNotFoundError, match="does not exist"):
        memory.import_jsonl(tmp_path / "missing.jsonl")


def test_bad_auction_line_names_its_location_once(tmp_path: Path) -> None:
    path = tmp_path / "when.jsonl"
    path.write_text(json.dumps({"kind": "auction", "auction_id": "a1", "task": "t", "timestamp": "soon"}) + "\n")
    with pytest.raises(MemoryStoreError) as err:
        read_export(path)
    assert str(err.value) == f"{path}:1: auction line: timestamp must be a number, got 'soon'"


def test_auction_id_must_be_a_string(tmp_path: Path) -> None:
    path = tmp_path / "ids.jsonl"
    lines = [{"kind": "auction", "auction_id": 5, "task": "t"}, {"kind": "auction", "auction_id": "b", "task": "t"}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(MemoryStoreError, match=r"ids.jsonl:1: auction_id must be a string, got 5"):
        read_export(path)


def test_degraded_round_trips_and_old_files_import_as_not_degraded(memory: AuctionMemory, tmp_path: Path) -> None:
    memory.record_auction("a1", "first task", "search", [bid("big", won=True, timestamp=1.0)], degraded=True, degraded_reason="1/3 judges")
    memory.record_auction("a2", "second task", "search", [bid("big", won=True, timestamp=2.0)])
    first, second = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    memory.export_jsonl(first)
    auctions = [json.loads(x) for x in first.read_text(encoding="utf-8").splitlines() if '"auction"' in x]
    assert [(a["auction_id"], a["degraded"], a["degraded_reason"]) for a in auctions] == [("a1", True, "1/3 judges"), ("a2", False, "")]
    memory.clear()
    memory.import_jsonl(first)
    assert memory.stats()["degraded"] == 1
    memory.export_jsonl(second)
    assert first.read_bytes() == second.read_bytes()

    # A file written before the flag existed: no degraded fields on its auction line.
    old = tmp_path / "old.jsonl"
    lines = [json.loads(x) for x in first.read_text(encoding="utf-8").splitlines()]
    for line in lines:
        line.pop("degraded", None)
        line.pop("degraded_reason", None)
    old.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    memory.clear()
    assert memory.import_jsonl(old) == (2, 2)
    assert memory.stats()["degraded"] == 0
    read, _ = read_export(old)
    assert {(a["degraded"], a["degraded_reason"]) for a in read.values()} == {(False, "")}


def test_bad_degraded_fields_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "deg.jsonl"
    for bad, message in (({"degraded": "yes"}, "degraded must be true or false"), ({"degraded_reason": "why"}, "empty unless degraded")):
        path.write_text(json.dumps({"kind": "auction", "auction_id": "a1", "task": "t", **bad}) + "\n")
        with pytest.raises(MemoryStoreError, match=rf"deg.jsonl:1: .*{message}"):
            read_export(path)
