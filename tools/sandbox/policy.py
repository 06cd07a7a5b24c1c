"""Pure run policy: the environment, rlimits and extra files of a run, and which limit stopped it.

Nothing here starts a process; every function is unit tested on its own.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import PurePosixPath

from sale_graph.tools.sandbox.base import MAIN_SCRIPT, RUN_ID_VAR, LimitName, SandboxLimits

_MEMORY_PATTERNS = re.compile(r"MemoryError|Cannot allocate memory|std::bad_alloc|\[Errno 12\]")
_FSIZE_PATTERNS = re.compile(r"File too large|\[Errno 27\]")
_NPROC_PATTERNS = re.compile(
    r"BlockingIOError: \[Errno 11\]|Resource temporarily unavailable|can't start new thread"
)


def sandbox_env(workdir: str, python: str, run_id: str) -> dict[str, str]:
    """The complete environment of a sandboxed run: a fixed safe set, nothing inherited.

    Nothing is copied from ``os.environ`` so API keys and tokens cannot leak.

    Args:
        workdir: The run's work dir (also ``HOME`` and ``TMPDIR``).
        python: The interpreter; its directory goes first on ``PATH``.
        run_id: The per-run id, passed as :data:`RUN_ID_VAR`.

    Returns:
        The environment mapping for the child process.
    """
    python_dir = os.path.dirname(python)
    return {
        "PATH": f"{python_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONHASHSEED": "0",
        RUN_ID_VAR: run_id,
    }


def rlimit_plan(limits: SandboxLimits, nproc: int | None) -> dict[str, tuple[int, int]]:
    """The (soft, hard) rlimits to set in the child, keyed by ``resource`` constant name.

    CPU gets a hard limit one second above the soft one so the child first
    receives SIGXCPU (which identifies the limit) before SIGKILL.

    Args:
        limits: The run's limits.
        nproc: The ``RLIMIT_NPROC`` value, or None where it would be meaningless
            (root without a uid change).

    Returns:
        ``{"RLIMIT_CPU": (soft, hard), ...}``.
    """
    cpu = max(1, int(limits.cpu_time_s))
    plan = {
        "RLIMIT_CPU": (cpu, cpu + 1),
        "RLIMIT_AS": (limits.memory_bytes, limits.memory_bytes),
        "RLIMIT_FSIZE": (limits.file_size_bytes, limits.file_size_bytes),
        "RLIMIT_CORE": (0, 0),
        "RLIMIT_NOFILE": (256, 256),
    }
    if nproc is not None:
        plan["RLIMIT_NPROC"] = (nproc, nproc)
    return plan


def validate_files(files: dict[str, str] | None) -> dict[str, str]:
    """Check extra files are relative paths inside the work dir; return them normalised.

    Args:
        files: Extra files by relative path, or None.

    Returns:
        The files keyed by their normalised relative path.

    Raises:
        ValueError: A content is not a str, a path leaves the work dir, or it is :data:`MAIN_SCRIPT`.
    """
    checked: dict[str, str] = {}
    for name, content in (files or {}).items():
        if not isinstance(content, str):
            raise ValueError(f"sandbox file {name!r}: content must be str, got {type(content).__name__}")
        path = PurePosixPath(name)
        if not name or path.is_absolute() or ".." in path.parts or str(path) in ("", "."):
            raise ValueError(
                f"sandbox file {name!r}: use a relative path inside the work dir (no '/', no '..')"
            )
        if str(path) == MAIN_SCRIPT:
            raise ValueError(f"sandbox file {name!r}: {MAIN_SCRIPT} is reserved for the code itself; rename it")
        checked[str(path)] = content
    return checked


def classify_limit(
    *,
    exit_code: int | None,
    killed_for: LimitName | None,
    stderr: str,
    truncated: bool,
    elapsed_s: float,
    limits: SandboxLimits,
) -> LimitName | None:
    """Name the limit that stopped (or visibly constrained) a run, or None.

    Precedence: a limit the sandbox itself enforced by killing (wall time,
    output) > a limit signal (SIGXCPU, SIGXFSZ) > the error the code died with
    (MemoryError, EFBIG, EAGAIN from fork) > truncated output.

    Args:
        exit_code: The run's exit status (negative: killed by that signal).
        killed_for: The limit the sandbox killed the run for, if it did.
        stderr: The run's kept standard error.
        truncated: Whether any output was dropped.
        elapsed_s: Wall time of the run.
        limits: The run's limits.

    Returns:
        The limit's name, or None.
    """
    if killed_for is not None:
        return killed_for
    if exit_code is not None and exit_code < 0:
        sig = -exit_code
        if sig == signal.SIGXCPU:
            return "cpu_time"
        if sig == signal.SIGXFSZ:
            return "file_size"
        if sig == signal.SIGKILL and elapsed_s >= limits.cpu_time_s:
            return "cpu_time"  # hard CPU limit after an ignored SIGXCPU
    if exit_code not in (0, None):
        if _MEMORY_PATTERNS.search(stderr):
            return "memory"
        if _FSIZE_PATTERNS.search(stderr):
            return "file_size"
        if _NPROC_PATTERNS.search(stderr):
            return "processes"
    if truncated:
        return "output"
    return None
