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
