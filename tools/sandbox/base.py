"""The sandbox contract: the :class:`Sandbox` protocol, its limits, results, errors and constants.

Everything here is pure data: no process is started and nothing is probed.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from sale_graph.errors import SaleError

LimitName = Literal["wall_time", "cpu_time", "memory", "file_size", "processes", "output"]

#: Name of the script the sandbox writes the code to, inside the work dir.
MAIN_SCRIPT = "main.py"
#: Prefix of every per-run temporary work directory (under ``tempfile.gettempdir()``).
WORKDIR_PREFIX = "sale-sbx-"
#: Environment variable carrying the per-run id; the rlimits backend uses it to
#: find stray processes after a run.
RUN_ID_VAR = "SALE_SANDBOX_RUN_ID"
#: A run that keeps writing past this many times ``max_output_bytes`` is killed.
OUTPUT_KILL_FACTOR = 16
#: Size of the private ``/tmp`` tmpfs inside bubblewrap.
BWRAP_TMPFS_BYTES = 64 * 1024 * 1024
#: Range of throw-away uids used when the host runs as root.
SANDBOX_UID_RANGE = (1_900_000_000, 2_000_000_000)
#: The one-line warning every result of the rlimits backend carries (shown to the model and in traces).
WEAK_ISOLATION_WARNING = (
    "weak isolation (rlimits backend): only CPU, memory, process and file-size limits; "
    "NO filesystem or network isolation: the code can write outside its work dir and reach the network"
)

#: Every guarantee a backend may give; used by tests and by callers that need one.
ALL_GUARANTEES = frozenset(
    {
        "wall_time",  # killed after the wall-time limit
        "cpu_time",  # RLIMIT_CPU
        "memory",  # RLIMIT_AS
        "file_size",  # RLIMIT_FSIZE
        "processes",  # a working process cap (fork bombs contained)
        "output",  # output read with a cap and truncated
        "env_stripped",  # no variable of the parent's environment is passed on
        "no_leftover_processes",  # nothing survives the run (PID namespace)
        "no_network",  # no network at all, loopback included
        "fs_readonly",  # no writes outside the work dir (and a private /tmp)
        "host_proc_hidden",  # host processes (and their environ) are invisible
    }
)
BWRAP_GUARANTEES = ALL_GUARANTEES
#: The rlimits backend's guarantees. "processes" holds only where a cap can be
#: enforced (non-root, or root with a writable pids cgroup); stray processes are
#: swept best-effort (by cgroup, or by the run id in their environment).
RLIMIT_GUARANTEES = frozenset(
    {"wall_time", "cpu_time", "memory", "file_size", "processes", "output", "env_stripped"}
)

_LIMIT_EXPLANATIONS: dict[str, str] = {
    "wall_time": "ran past the wall-time limit and was killed",
    "cpu_time": "used up its CPU-time limit and was killed",
    "memory": "ran out of its memory (address-space) limit",
    "file_size": "tried to write a file larger than the file-size limit",
    "processes": "hit the process-count limit (fork failed)",
    "output": "produced more output than the output limit; output was truncated",
}


class SandboxError(SaleError, RuntimeError):
    """The sandbox itself could not run the code (not a failure of the code)."""


class SandboxUnavailableError(SandboxError):
    """No acceptable sandbox here: bubblewrap is missing or broken and weak isolation was not opted into.

    Also raised for an unknown backend choice (``SALE_SANDBOX`` or ``backend=``).
    The message says what is missing and what to do.
    """


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one run. Defaults suit short test-style programs.

    Attributes:
        wall_time_s: Seconds of real time before the whole run is killed.
        cpu_time_s: Seconds of CPU time (``RLIMIT_CPU``).
        memory_bytes: Address-space cap (``RLIMIT_AS``).
        file_size_bytes: Largest file the code may write (``RLIMIT_FSIZE``).
        max_processes: Process cap (fork bombs are contained by it).
        max_output_bytes: Output kept per stream (stdout and stderr each).

    Raises:
        ValueError: A limit is not a positive number.
    """

    wall_time_s: float = 10.0
    cpu_time_s: int = 10
    memory_bytes: int = 512 * 1024 * 1024
    file_size_bytes: int = 16 * 1024 * 1024
    max_processes: int = 64
    max_output_bytes: int = 64 * 1024  # per stream (stdout and stderr each)

    def __post_init__(self) -> None:
        for name in (
            "wall_time_s",
            "cpu_time_s",
            "memory_bytes",
            "file_size_bytes",
            "max_processes",
            "max_output_bytes",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(
                    f"SandboxLimits.{name} must be a positive number, got {value!r}; "
                    "pass a value > 0 or leave the default."
                )


@dataclass
class SandboxResult:
    """What one sandboxed run produced, ready to be shown to a model.

    Attributes:
        stdout: The kept standard output (truncated with a marker if too long).
        stderr: The kept standard error (truncated with a marker if too long).
        exit_code: The exit status; negative: killed by that signal; None: never started.
        limit_hit: The limit that stopped (or visibly constrained) the run, if any.
        elapsed_s: Wall time of the run in seconds.
        isolation: The backend's isolation level, as its ``isolation`` attribute says.
        truncated_bytes: Bytes dropped from stdout and stderr together.
        backend: The backend that ran the code (``"bubblewrap"``, ``"rlimits"``); "" if unknown.
        warning: A one-line warning about the run's isolation ("" when there is none).
    """

    stdout: str
    stderr: str
    exit_code: int | None  # negative: killed by that signal; None: never started
    limit_hit: LimitName | None
    elapsed_s: float
    isolation: str
    truncated_bytes: int = 0  # bytes dropped from stdout + stderr
    backend: str = ""
    warning: str = ""

    @property
    def ok(self) -> bool:
        """True when the program exited with status 0 and no limit stopped it."""
        return self.exit_code == 0 and self.limit_hit in (None, "output")

    def to_text(self) -> str:
        """Format the result compactly for an LLM: status line, then both streams.

        Returns:
            The status line, the limit hit (if any), timing, backend and isolation, the
            isolation warning (if any), then both streams.
        """
        status = f"exit code: {self.exit_code}"
        if self.exit_code is not None and self.exit_code < 0:
            status += f" (killed by signal {signal_name(-self.exit_code)})"
        lines = [status]
        if self.limit_hit is not None:
            lines.append(f"limit hit: {self.limit_hit} (the program {_LIMIT_EXPLANATIONS[self.limit_hit]})")
        backend = f"backend: {self.backend}; " if self.backend else ""
        lines.append(f"elapsed: {self.elapsed_s:.2f} s; {backend}isolation: {self.isolation}")
        if self.warning:
            lines.append(f"WARNING: {self.warning}")
        lines.append("--- stdout ---")
        lines.append(self.stdout.rstrip("\n") if self.stdout else "(empty)")
        lines.append("--- stderr ---")
        lines.append(self.stderr.rstrip("\n") if self.stderr else "(empty)")
        return "\n".join(lines)


@runtime_checkable
class Sandbox(Protocol):
    """Anything that runs Python source in isolation and reports a SandboxResult.

    Implement this (plus the ``isolation`` and ``guarantees`` attributes) to plug
    a container- or VM-based backend into the code tools.

    Attributes:
        isolation: Human-readable isolation level (e.g. ``"bubblewrap"``).
        guarantees: The names (from :data:`ALL_GUARANTEES`) this backend enforces.
    """

    isolation: str
    guarantees: frozenset[str]

    def run(
        self,
        code: str,
        *,
        files: dict[str, str] | None = None,
        limits: SandboxLimits | None = None,
    ) -> SandboxResult:
        """Run ``code`` as ``main.py`` in a fresh work dir holding ``files``.

        Args:
            code: The Python source to run.
            files: Extra files for the work dir, by relative path.
            limits: Resource limits for this run; None means the backend's defaults.

        Returns:
            What the run produced.
        """
        ...


def signal_name(sig: int) -> str:
    """The symbolic name of signal number ``sig`` (e.g. ``SIGKILL``), or the number itself.

    Args:
        sig: A signal number.

    Returns:
        The name, or ``str(sig)`` for an unknown number.
    """
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)
