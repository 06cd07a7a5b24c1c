"""Backend selection: the strongest sandbox that works on this host."""

from __future__ import annotations

import shutil
from collections.abc import Callable

from sale_graph.tools.sandbox.base import Sandbox
from sale_graph.tools.sandbox.bubblewrap import BubblewrapSandbox, probe_bubblewrap
from sale_graph.tools.sandbox.rlimits import RlimitSandbox


def choose_backend(bwrap_path: str | None, probe: Callable[[str], str | None]) -> tuple[str, str | None]:
    """Decide between "bubblewrap" and "rlimits-only"; return (backend, reason for fallback).

    Args:
        bwrap_path: Path of the ``bwrap`` executable, or None if it is not installed.
        probe: Tries bubblewrap at that path; returns None if it works, else why not.

    Returns:
        ``("bubblewrap", None)``, or ``("rlimits-only", reason)``.
    """
    if bwrap_path is None:
        return "rlimits-only", "bwrap not found on PATH"
    failure = probe(bwrap_path)
    if failure is not None:
        return "rlimits-only", f"bwrap probe failed: {failure}"
    return "bubblewrap", None


def default_sandbox(python: str | None = None) -> Sandbox:
    """The strongest sandbox available here: bubblewrap if it works, else rlimits-only.

    The fallback's ``isolation`` names the lower isolation and the reason.

    Args:
        python: The interpreter that runs the code; defaults to ``sys.executable``.

    Returns:
        A :class:`BubblewrapSandbox`, or a :class:`RlimitSandbox` saying why.
    """
    backend, reason = choose_backend(shutil.which("bwrap"), lambda b: probe_bubblewrap(b, python))
    if backend == "bubblewrap":
        return BubblewrapSandbox(python=python)
    sandbox = RlimitSandbox(python=python)
    sandbox.isolation = f"{sandbox.isolation}; {reason}"
    return sandbox
