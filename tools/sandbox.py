"""Run untrusted, model-written Python in a separate, limited process.

Model-written code is treated as hostile. Every run gets a fresh temporary
working directory (removed afterwards), a stripped environment, resource limits
(wall time, CPU time, address space, file size, processes, output size), its own
session/process group, and is killed as a whole when a limit is hit.

Two backends implement the :class:`Sandbox` protocol:

* :class:`BubblewrapSandbox` (``isolation == "bubblewrap"``): Debian's ``bwrap``
  adds a read-only root, private ``/tmp``, no network, a private PID namespace
  (nothing outlives the run) and hides host processes. When the host runs as
  root, the code runs as a fresh unprivileged uid, so ``RLIMIT_NPROC`` is
  enforced and root-only files stay unreadable.
* :class:`RlimitSandbox` (``isolation`` starts with ``"rlimits-only"``): a plain
  subprocess with the same limits, for hosts without working bubblewrap. It
  lacks the filesystem, network and ``/proc`` isolation; see
  :data:`RLIMIT_GUARANTEES`.

:func:`default_sandbox` probes bubblewrap once and picks the best backend. A
stronger backend (a container, e2b) only has to provide ``run`` (and the
``isolation`` and ``guarantees`` attributes) to plug into the code tools.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Literal, Protocol, Sequence, runtime_checkable

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


class SandboxError(RuntimeError):
    """The sandbox itself could not run the code (not a failure of the code)."""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one run. Defaults suit short test-style programs."""

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
    """What one sandboxed run produced, ready to be shown to a model."""

    stdout: str
    stderr: str
    exit_code: int | None  # negative: killed by that signal; None: never started
    limit_hit: LimitName | None
    elapsed_s: float
    isolation: str
    truncated_bytes: int = 0  # bytes dropped from stdout + stderr

    @property
    def ok(self) -> bool:
        """True when the program exited with status 0 and no limit stopped it."""
        return self.exit_code == 0 and self.limit_hit in (None, "output")

    def to_text(self) -> str:
        """Format the result compactly for an LLM: status line, then both streams."""
        status = f"exit code: {self.exit_code}"
        if self.exit_code is not None and self.exit_code < 0:
            status += f" (killed by signal {_signal_name(-self.exit_code)})"
        lines = [status]
        if self.limit_hit is not None:
            lines.append(f"limit hit: {self.limit_hit} (the program {_LIMIT_EXPLANATIONS[self.limit_hit]})")
        lines.append(f"elapsed: {self.elapsed_s:.2f} s; isolation: {self.isolation}")
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
        """Run ``code`` as ``main.py`` in a fresh work dir holding ``files``."""
        ...


# --------------------------------------------------------------------------
# Pure helpers (unit tested)
# --------------------------------------------------------------------------


class OutputCapture:
    """Keeps the head and tail of a byte stream within a fixed budget.

    The tail matters as much as the head: tracebacks are at the end.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.head_cap = cap - cap // 4
        self.tail_cap = cap // 4
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        """Account for a chunk of output, keeping only the budgeted bytes."""
        self.total += len(data)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data and self.tail_cap > 0:
            self.tail += data
            if len(self.tail) > self.tail_cap:
                del self.tail[: len(self.tail) - self.tail_cap]

    @property
    def dropped(self) -> int:
        """Bytes seen but not kept."""
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        """The kept output, with a ``...[truncated N bytes]...`` marker where bytes were dropped."""
        head = self.head.decode("utf-8", errors="replace")
        if self.dropped == 0:
            return head + self.tail.decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        return f"{head}\n...[truncated {self.dropped} bytes]...\n{tail}"


def truncate_text(text: str, cap: int) -> str:
    """Cap ``text`` at about ``cap`` UTF-8 bytes with the sandbox's truncation marker."""
    capture = OutputCapture(cap)
    capture.feed(text.encode("utf-8"))
    return capture.text()


def sandbox_env(workdir: str, python: str, run_id: str) -> dict[str, str]:
    """The complete environment of a sandboxed run: a fixed safe set, nothing inherited.

    Nothing is copied from ``os.environ`` so API keys and tokens cannot leak.
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
    receives SIGXCPU (which identifies the limit) before SIGKILL. ``nproc`` is
    None where RLIMIT_NPROC would be meaningless (root without a uid change).
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
    """Check extra files are relative paths inside the work dir; return them normalised."""
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


_MEMORY_PATTERNS = re.compile(r"MemoryError|Cannot allocate memory|std::bad_alloc|\[Errno 12\]")
_FSIZE_PATTERNS = re.compile(r"File too large|\[Errno 27\]")
_NPROC_PATTERNS = re.compile(
    r"BlockingIOError: \[Errno 11\]|Resource temporarily unavailable|can't start new thread"
)


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


def bwrap_exit_code(code: int) -> int:
    """Map bubblewrap's ``128 + signal`` convention back to Popen's ``-signal``."""
    if 128 < code < 128 + 65:
        return -(code - 128)
    return code


def blocked_ancestor(path: str, mode_of: Callable[[str], int]) -> str | None:
    """The top-most proper ancestor of ``path`` that other users cannot traverse, or None.

    Used to decide which directory (e.g. ``/root`` holding a pyenv Python) must
    be masked and the interpreter re-bound so an unprivileged uid can run it.
    """
    parts = PurePosixPath(path).parts
    current = PurePosixPath("/")
    for part in parts[1:-1]:
        current = current / part
        if not mode_of(str(current)) & stat.S_IXOTH:
            return str(current)
    return None


def python_mounts(paths: Iterable[str], mode_of: Callable[[str], int]) -> list[str]:
    """bwrap arguments that make ``paths`` reachable for an unprivileged uid.

    Each blocked ancestor becomes an empty tmpfs; the needed paths are bound back
    read-only at the same location (so venv symlinks keep working), with the
    directories between them created world-traversable.
    """
    args: list[str] = []
    masked: set[str] = set()
    created: set[str] = set()
    for needed in sorted(set(paths)):
        top = blocked_ancestor(needed, mode_of)
        if top is None or top == "/":
            continue
        if top not in masked:
            args += ["--perms", "0755", "--tmpfs", top]
            masked.add(top)
        inner = PurePosixPath(needed).relative_to(top).parts[:-1]
        current = PurePosixPath(top)
        for part in inner:
            current = current / part
            if str(current) not in created:
                args += ["--perms", "0755", "--dir", str(current)]
                created.add(str(current))
        args += ["--ro-bind", needed, needed]
    return args


PRIVATE_ROOTS = ("/tmp",)


def private_root_binds(paths: Iterable[str], private_roots: Sequence[str] = PRIVATE_ROOTS) -> list[str]:
    """bwrap arguments that bind back, read-only, needed paths that live under a private tmpfs.

    The sandbox gets an empty ``/tmp``: an interpreter or virtualenv installed under
    ``/tmp`` (a CI checkout, say) would vanish without these binds.
    """
    args: list[str] = []
    created: set[str] = set()
    for needed in sorted(set(paths)):
        root = next((r for r in private_roots if needed.startswith(r.rstrip("/") + "/")), None)
        if root is None:
            continue
        # Directories bwrap would create on its own are root-only (0700): make them
        # traversable for the throw-away uid the code runs as.
        current = PurePosixPath(root)
        for part in PurePosixPath(needed).relative_to(root).parts[:-1]:
            current = current / part
            if str(current) not in created:
                args += ["--perms", "0755", "--dir", str(current)]
                created.add(str(current))
        args += ["--ro-bind", needed, needed]
    return args


def bwrap_argv(
    *,
    bwrap: str,
    workdir: str,
    as_root: bool,
    extra_mounts: list[str],
    command: list[str],
) -> list[str]:
    """The bubblewrap command line for one run (read-only root, private /tmp, no network)."""
    argv = [
        bwrap,
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--perms", "1777", "--size", str(BWRAP_TMPFS_BYTES), "--tmpfs", "/tmp",
        *extra_mounts,
        "--bind", workdir, workdir,
        "--chdir", workdir,
    ]  # fmt: skip
    if as_root:
        # No user namespace: the launcher needs real root to switch to the
        # throw-away uid (a root-mapped user namespace would keep kuid 0, for
        # which the kernel never enforces RLIMIT_NPROC).
        argv += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    else:
        argv += ["--unshare-all"]
    argv += ["--die-with-parent", "--new-session", "--hostname", "sandbox", "--", *command]
    return argv


def choose_backend(bwrap_path: str | None, probe: Callable[[str], str | None]) -> tuple[str, str | None]:
    """Decide between "bubblewrap" and "rlimits-only"; return (backend, reason for fallback)."""
    if bwrap_path is None:
        return "rlimits-only", "bwrap not found on PATH"
    failure = probe(bwrap_path)
    if failure is not None:
        return "rlimits-only", f"bwrap probe failed: {failure}"
    return "bubblewrap", None


# --------------------------------------------------------------------------
# The launcher: trusted code that runs inside the sandbox before the user code
# --------------------------------------------------------------------------

# Runs as `python -I -S -c _LAUNCHER <json>`: joins the cgroup (if any), sets
# the rlimits, drops to the throw-away uid (if any), then execs the user code.
_LAUNCHER = """\
import json, os, resource, sys
cfg = json.loads(sys.argv[1])
if cfg["cgroup_procs"]:
    with open(cfg["cgroup_procs"], "w") as f:
        f.write(str(os.getpid()))
for name, (soft, hard) in cfg["rlimits"].items():
    resource.setrlimit(getattr(resource, name), (soft, hard))
if cfg["uid"] is not None:
    os.setgroups([])
    os.setgid(cfg["uid"])
    os.setuid(cfg["uid"])
os.execv(cfg["python"], [cfg["python"], "-s", cfg["script"]])
"""


def _launcher_command(
    python: str, script: str, rlimits: dict[str, tuple[int, int]], uid: int | None, cgroup_procs: str | None
) -> list[str]:
    cfg = {"python": python, "script": script, "rlimits": rlimits, "uid": uid, "cgroup_procs": cgroup_procs}
    return [python, "-I", "-S", "-c", _LAUNCHER, json.dumps(cfg)]


# --------------------------------------------------------------------------
# Process plumbing
# --------------------------------------------------------------------------


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the whole group is already gone


def _kill_pids(pids: Iterable[int]) -> None:
    """SIGKILL each process; those already gone are skipped."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _pids_with_env_marker(marker: bytes) -> list[int]:
    """Processes whose initial environment contains ``marker`` (readable ones only)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue  # gone, or not ours to read
    return found


def _count_tasks_of_uid(uid: int) -> int:
    """Tasks (threads count, as for RLIMIT_NPROC) currently owned by ``uid``."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            total += int(fields.get("Threads", "1").strip())
    return total


class _PidsCgroup:
    """A throw-away pids cgroup: caps processes and kills every member at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, name: str, max_pids: int) -> tuple["_PidsCgroup | None", str | None]:
        """Make the cgroup; return (cgroup, None) or (None, why not)."""
        reasons = []
        for base in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
            if base == Path("/sys/fs/cgroup"):
                try:
                    if "pids" not in (base / "cgroup.subtree_control").read_text().split():
                        reasons.append("cgroup v2 root does not delegate pids")
                        continue
                except OSError as exc:
                    reasons.append(f"{base}: {exc.strerror}")
                    continue
            if not (base / "cgroup.procs").exists():
                reasons.append(f"{base}: not a cgroup")
                continue
            path = base / name
            try:
                path.mkdir()
                (path / "pids.max").write_text(str(max_pids))
                return cls(path), None
            except OSError as exc:
                reasons.append(f"{path}: {exc.strerror}")
                if path.exists():
                    cls(path).remove()
        return None, "; ".join(reasons)

    @property
    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    def kill_all(self) -> None:
        """SIGKILL members until none is left (new forks are bounded by pids.max)."""
        for _ in range(200):
            try:
                pids = [int(p) for p in Path(self.procs_file).read_text().split()]
            except OSError:
                return
            if not pids:
                return
            _kill_pids(pids)
            time.sleep(0.005)

    def remove(self) -> None:
        """Delete the cgroup directory once it is empty."""
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)  # members still exiting
        raise SandboxError(f"could not remove pids cgroup {self.path}; remove it by hand")


@dataclass
class _RunPlan:
    """Everything a backend decides before starting a run."""

    argv: list[str]
    uid: int | None = None
    cgroup: _PidsCgroup | None = None
    isolation: str = ""
    cleanup: list[Callable[[], None]] = field(default_factory=list)


class _ProcessSandbox:
    """Shared machinery: work dir, process start, capped reading, limits, cleanup."""

    isolation: str = "process"
    guarantees: frozenset[str] = frozenset()

    def __init__(self, python: str | None = None, default_limits: SandboxLimits | None = None) -> None:
        self.python = python or sys.executable
        self.default_limits = default_limits or SandboxLimits()

    def run(
        self,
        code: str,
        *,
        files: dict[str, str] | None = None,
        limits: SandboxLimits | None = None,
    ) -> SandboxResult:
        """Run ``code`` as ``main.py`` in a fresh work dir holding ``files``; never raises for bad code."""
        if not isinstance(code, str):
            raise TypeError(f"sandbox code must be str, got {type(code).__name__}")
        extra = validate_files(files)
        limits = limits or self.default_limits
        run_id = secrets.token_hex(8)
        workdir = tempfile.mkdtemp(prefix=WORKDIR_PREFIX)
        plan: _RunPlan | None = None
        try:
            self._write_files(workdir, code, extra)
            plan = self._plan(workdir, run_id, limits)
            if plan.uid is not None:
                _chown_tree(workdir, plan.uid)
            return self._execute(plan, workdir, run_id, limits)
        finally:
            if plan is not None:
                for step in plan.cleanup:
                    step()
            _remove_tree(workdir)

    # -- hooks ---------------------------------------------------------------

    def _plan(self, workdir: str, run_id: str, limits: SandboxLimits) -> _RunPlan:
        raise NotImplementedError

    def _normalize_exit(self, code: int) -> int:
        return code

    def _sweep(self, plan: _RunPlan, run_id: str) -> None:
        """Kill whatever of the run may still be alive after the main process ended."""

    # -- steps ---------------------------------------------------------------

    @staticmethod
    def _write_files(workdir: str, code: str, files: dict[str, str]) -> None:
        # surrogatepass: odd model output becomes a SyntaxError in the sandbox, not an error here
        Path(workdir, MAIN_SCRIPT).write_text(code, encoding="utf-8", errors="surrogatepass")
        for name, content in files.items():
            target = Path(workdir, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8", errors="surrogatepass")

    def _execute(self, plan: _RunPlan, workdir: str, run_id: str, limits: SandboxLimits) -> SandboxResult:
        env = sandbox_env(workdir, self.python, run_id)
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                plan.argv,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise SandboxError(f"could not start the sandbox ({plan.argv[0]}): {exc}") from exc
        out, err = OutputCapture(limits.max_output_bytes), OutputCapture(limits.max_output_bytes)
        try:
            killed_for = self._pump(proc, out, err, start + limits.wall_time_s, limits)
            elapsed = time.monotonic() - start
        finally:
            _kill_group(proc.pid)  # leftovers in the group, or everything on error
            self._sweep(plan, run_id)
            self._drain(proc, out, err)
            proc.wait()
        exit_code = self._normalize_exit(proc.returncode)
        stderr = err.text()
        return SandboxResult(
            stdout=out.text(),
            stderr=stderr,
            exit_code=exit_code,
            limit_hit=classify_limit(
                exit_code=exit_code,
                killed_for=killed_for,
                stderr=stderr,
                truncated=bool(out.dropped or err.dropped),
                elapsed_s=elapsed,
                limits=limits,
            ),
            elapsed_s=round(elapsed, 4),
            isolation=plan.isolation,
            truncated_bytes=out.dropped + err.dropped,
        )

    @staticmethod
    def _pump(
        proc: subprocess.Popen[bytes],
        out: OutputCapture,
        err: OutputCapture,
        deadline: float,
        limits: SandboxLimits,
    ) -> LimitName | None:
        """Read both pipes until the main process ends or a limit is hit; return the kill reason."""
        assert proc.stdout is not None and proc.stderr is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        kill_after = limits.max_output_bytes * OUTPUT_KILL_FACTOR
        exited_at: float | None = None
        try:
            while sel.get_map():
                now = time.monotonic()
                if now >= deadline:
                    _kill_group(proc.pid)
                    return "wall_time"
                if exited_at is None and proc.poll() is not None:
                    exited_at = now
                if exited_at is not None and now - exited_at > 0.2:
                    return None  # main process done; stray writers are killed by the caller
                for key, _ in sel.select(min(deadline - now, 0.05)):
                    data = os.read(key.fd, 65536)
                    if data:
                        key.data.feed(data)
                    else:
                        sel.unregister(key.fileobj)
                if out.total + err.total > kill_after:
                    _kill_group(proc.pid)
                    return "output"
            remaining = deadline - time.monotonic()
            try:
                proc.wait(timeout=max(remaining, 0))
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                return "wall_time"
            return None
        finally:
            sel.close()

    @staticmethod
    def _drain(proc: subprocess.Popen[bytes], out: OutputCapture, err: OutputCapture) -> None:
        """Read what is left in the pipes after everything was killed, then close them."""
        for pipe, capture in ((proc.stdout, out), (proc.stderr, err)):
            if pipe is None or pipe.closed:
                continue
            os.set_blocking(pipe.fileno(), False)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                try:
                    data = os.read(pipe.fileno(), 65536)
                except BlockingIOError:
                    time.sleep(0.01)
                    continue
                if not data:
                    break
                capture.feed(data)
            pipe.close()


def _remove_tree(root: str) -> None:
    """Delete a work dir even if the code made parts of it unreadable (chmod 000)."""
    try:
        shutil.rmtree(root)
        return
    except OSError:
        pass  # retried below after restoring permissions; a second failure propagates
    stack = [root]
    while stack:
        directory = stack.pop()
        os.chmod(directory, 0o700)
        with os.scandir(directory) as entries:
            stack += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    shutil.rmtree(root)


def _chown_tree(root: str, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, uid, uid)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), uid, uid)


def _throwaway_uid() -> int:
    low, high = SANDBOX_UID_RANGE
    return low + secrets.randbelow(high - low)


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


class BubblewrapSandbox(_ProcessSandbox):
    """Runs code under bubblewrap: read-only root, private /tmp, no network, PID namespace."""

    guarantees = BWRAP_GUARANTEES

    def __init__(
        self,
        python: str | None = None,
        default_limits: SandboxLimits | None = None,
        bwrap: str | None = None,
    ) -> None:
        super().__init__(python, default_limits)
        found = bwrap or shutil.which("bwrap")
        if found is None:
            raise SandboxError("bubblewrap (bwrap) is not installed; install it (apt-get install bubblewrap) or use RlimitSandbox")
        self.bwrap = found
        self.as_root = os.geteuid() == 0
        self.isolation = "bubblewrap"
        needed = _python_paths(self.python)
        self._mounts = (python_mounts(needed, _mode_of) if self.as_root else []) + private_root_binds(needed)

    def _plan(self, workdir: str, run_id: str, limits: SandboxLimits) -> _RunPlan:
        uid = _throwaway_uid() if self.as_root else None
        rlimits = rlimit_plan(limits, limits.max_processes)
        command = _launcher_command(self.python, MAIN_SCRIPT, rlimits, uid, None)
        argv = bwrap_argv(
            bwrap=self.bwrap, workdir=workdir, as_root=self.as_root, extra_mounts=self._mounts, command=command
        )
        return _RunPlan(argv=argv, uid=uid, isolation=self.isolation)

    def _normalize_exit(self, code: int) -> int:
        return bwrap_exit_code(code) if code > 0 else code


class RlimitSandbox(_ProcessSandbox):
    """A plain subprocess with rlimits: the fallback where bubblewrap is unavailable.

    Lacks: network isolation, filesystem isolation (the code can write wherever
    the host user can), hiding of host processes (``/proc/<pid>/environ`` of
    same-user processes is readable) and a guaranteed end of daemonised
    processes (they are swept by cgroup or by the run id in their environment).
    When the host runs as root the process cap needs a writable pids cgroup.
    """

    def __init__(self, python: str | None = None, default_limits: SandboxLimits | None = None) -> None:
        super().__init__(python, default_limits)
        self.as_root = os.geteuid() == 0
        self.isolation = "rlimits-only"
        self.guarantees = RLIMIT_GUARANTEES
        if self.as_root:
            cgroup, why = _PidsCgroup.create(f"{WORKDIR_PREFIX}probe-{secrets.token_hex(4)}", 1)
            if cgroup is None:
                self.isolation = f"rlimits-only (no process cap: running as root and no pids cgroup: {why})"
                self.guarantees = RLIMIT_GUARANTEES - {"processes"}
            else:
                cgroup.remove()

    def _plan(self, workdir: str, run_id: str, limits: SandboxLimits) -> _RunPlan:
        cgroup: _PidsCgroup | None = None
        nproc: int | None = None
        isolation = self.isolation
        if self.as_root:
            cgroup, why = _PidsCgroup.create(f"{WORKDIR_PREFIX}{run_id}", limits.max_processes)
            if cgroup is None and "no process cap" not in isolation:
                isolation = f"rlimits-only (no process cap this run: {why})"
        else:
            # RLIMIT_NPROC counts every task of the user, so allow the ones already running.
            nproc = _count_tasks_of_uid(os.getuid()) + limits.max_processes
        rlimits = rlimit_plan(limits, nproc)
        argv = _launcher_command(self.python, MAIN_SCRIPT, rlimits, None, cgroup.procs_file if cgroup else None)
        plan = _RunPlan(argv=argv, cgroup=cgroup, isolation=isolation)
        if cgroup is not None:
            plan.cleanup.append(cgroup.remove)
        return plan

    def _sweep(self, plan: _RunPlan, run_id: str) -> None:
        if plan.cgroup is not None:
            plan.cgroup.kill_all()
        marker = f"{RUN_ID_VAR}={run_id}".encode()
        for _ in range(20):
            pids = _pids_with_env_marker(marker)
            if not pids:
                return
            _kill_pids(pids)
            time.sleep(0.01)


# --------------------------------------------------------------------------
# Backend selection
# --------------------------------------------------------------------------

_PROBE_LOCK = threading.Lock()
_PROBE_CACHE: dict[tuple[str, str], str | None] = {}


def probe_bubblewrap(bwrap: str, python: str | None = None) -> str | None:
    """Run a trivial program under bubblewrap once; return None if it works, else why not.

    Cached per (bwrap, python): the answer does not change during a process.
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


def default_sandbox(python: str | None = None) -> Sandbox:
    """The strongest sandbox available here: bubblewrap if it works, else rlimits-only.

    The fallback's ``isolation`` names the lower isolation and the reason.
    """
    backend, reason = choose_backend(shutil.which("bwrap"), lambda b: probe_bubblewrap(b, python))
    if backend == "bubblewrap":
        return BubblewrapSandbox(python=python)
    sandbox = RlimitSandbox(python=python)
    sandbox.isolation = f"{sandbox.isolation}; {reason}"
    return sandbox
