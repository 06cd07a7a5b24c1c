"""Every user error of ``sale`` and ``sale bench`` is one line naming the input, exit code 2, no traceback (issue 20, finding 8).

Each case runs the CLI's ``main()`` in-process; every one fails before any model server
starts or any model is called.
"""

from __future__ import annotations

from pathlib import Path

import pytest

NOT_UTF8 = b"\xff\xfe\x00 What is the capital of Australia?"


def sale(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and stderr of ``sale ARGV``."""
    from sale_graph.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:  # the parser exits by itself
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


def assert_one_line(code: int, err: str, *names: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and "error: " in err
    for name in names:
        assert name in err, (name, err)


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SALE_HOME", str(tmp_path / "home"))
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "blank.txt").write_text("  \n\n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes(NOT_UTF8)
    (tmp_path / "latin1.jsonl").write_bytes(NOT_UTF8)
    (tmp_path / "folder").mkdir()
    return tmp_path


# --- sale run ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "names"), [
    (["run", "--max-concurrency", "0", "hi"], ["--max-concurrency", "at least 1, got 0"]),
    (["run", "--max-concurrency", "many", "hi"], ["--max-concurrency", "'many'"]),
    (["run", "--task-file", "empty.txt"], ["'empty.txt'", "empty"]),
    (["run", "--task-file", "blank.txt"], ["'blank.txt'", "empty"]),
    (["run", "--task-file", "latin1.txt"], ["'latin1.txt'", "not UTF-8"]),
    (["run", "--task-file", "missing.txt"], ["'missing.txt'", "does not exist"]),
    (["run", "--task-file", "folder"], ["'folder'", "is a folder"]),
    (["run", "--chroma-url", "not-a-url", "hi"], ["--chroma-url", "'not-a-url'", "http://HOST:PORT"]),
    (["run", "--chroma-url", "http://127.0.0.1:port", "hi"], ["--chroma-url", "bad port"]),
    (["run", "--pool", "missing.toml", "hi"], ["'missing.toml'"]),
    (["run"], ["give a task"]),
    (["frobnicate"], ["'frobnicate'", "sale --help"]),
])
def test_sale_run_user_errors(files: Path, capsys: pytest.CaptureFixture[str], argv: list[str], names: list[str]) -> None:
    assert_one_line(*sale(argv, capsys), *names)


@pytest.mark.parametrize(("argv", "names"), [
    (["calibrate", "--pool", "missing.toml", "--tasks", "t.txt", "--largest-share", "0.2", "--out", "w.json"], ["'missing.toml'"]),
    (["calibrate", "--pool", "pool.toml", "--tasks", "missing.txt", "--largest-share", "0.2", "--out", "w.json", "--no-check"],
     ["'missing.txt'"]),
    (["calibrate", "--pool", "pool.toml", "--tasks", "latin1.txt", "--largest-share", "0.2", "--out", "w.json", "--no-check"],
     ["'latin1.txt'", "not UTF-8"]),
    (["calibrate", "--pool", "pool.toml", "--tasks", "t.txt", "--largest-share", "0.2", "--out", "w.json", "--jobs", "0"],
     ["--jobs", "at least 1"]),
])
def test_sale_calibrate_user_errors(files: Path, capsys: pytest.CaptureFixture[str], argv: list[str], names: list[str]) -> None:
    (files / "t.txt").write_text("What is 2 + 2?\n", encoding="utf-8")
    (files / "pool.toml").write_text("".join(
        f'[[agents]]\nname = "{n}"\nmodel = "m"\nbase_url = "http://127.0.0.1:9/v1"\nprice_input = {p}\nprice_output = {p}\n'
        for n, p in (("a", 0.1), ("b", 1.0))), encoding="utf-8")
    assert_one_line(*sale(argv, capsys), *names)


# --- sale bench --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "names"), [
    (["bench", "fit", "--log", "missing.jsonl", "--out", "w.json"], ["'missing.jsonl'", "sale bench record"]),
    (["bench", "report", "--log", "missing.jsonl", "--out", "report"], ["'missing.jsonl'"]),
    (["bench", "record", "--tasks", "missing.jsonl", "--out", "log.jsonl"], ["'missing.jsonl'", "sale bench tasks"]),
    (["bench", "record", "--tasks", "latin1.jsonl", "--out", "log.jsonl"], ["'latin1.jsonl'", "not UTF-8"]),
    (["bench", "live", "--tasks", "missing.jsonl", "--out", "live.jsonl"], ["'missing.jsonl'"]),
    (["bench", "tasks", "--include", "missing.jsonl", "--out", "tasks.jsonl"], ["'missing.jsonl'"]),
    (["bench", "tasks", "--out", "tasks.jsonl"], ["--source", "--include"]),
    (["bench", "record", "--tasks", "t.jsonl", "--out", "log.jsonl", "--jobs", "0"], ["--jobs", "at least 1"]),
    (["bench", "synthetic", "--out", "log.jsonl", "--signal", "2"], ["--signal", "[0, 1]"]),
])
def test_sale_bench_user_errors(files: Path, capsys: pytest.CaptureFixture[str], argv: list[str], names: list[str]) -> None:
    assert_one_line(*sale(argv, capsys), *names)


def test_the_standalone_harness_answers_like_sale_bench(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sale_graph.bench.cli.commands import main

    assert main(["fit", "--log", "missing.jsonl", "--out", "w.json"]) == 2
    assert_one_line(2, capsys.readouterr().err, "'missing.jsonl'")


# --- sale memory: the same exit code for the same kind of mistake --------------------------------------


def test_sale_memory_user_errors_exit_2(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line(*sale(["memory", "stats", "--chroma-url", "not-a-url"], capsys), "'not-a-url'")
