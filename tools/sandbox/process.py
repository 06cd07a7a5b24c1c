"""Process handling shared by the subprocess-based backends.

:class:`ProcessSandbox` owns one run: the fresh work dir, the process start,
capped reading of both pipes, the wall-time and output limits, and cleanup.
Around it: killing helpers, a throw-away pids cgroup, the throw-away uid, and
removal of work dirs the code made unreadable.
"""

from __future__ import annotations

import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sale_graph.tools.sandbox.base import (
    MAIN_SCRIPT,
    OUTPUT_KILL_FACTOR,
    SANDBOX_UID_RANGE,
    WORKDIR_PREFIX,
    LimitName,
    SandboxError,
    SandboxLimits,
    SandboxResult,
)
from sale_graph.tools.sandbox.capture import OutputCapture
from sale_graph.tools.sandbox.policy import classify_limit, sandbox_env, validate_files

# --------------------------------------------------------------------------
# Killing and finding processes
# --------------------------------------------------------------------------


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by ``pid``; a group already gone is fine.

    Args:
        pid: The process-group id (the leader's pid).
    """
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the whole group is already gone


def kill_pids(pids: Iterable[int]) -> None:
    """SIGKILL each process; those already gone are skipped.

    Args:
        pids: The processes to kill.
    """
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def pids_with_env_marker(marker: bytes) -> list[int]:
    """Processes whose initial environment contains ``marker`` (readable ones only).

    Args:
        marker: A whole ``NAME=value`` entry to look for.

    Returns:
        The pids found (this process excluded).
    """
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


def count_tasks_of_uid(uid: int) -> int:
    """Tasks (threads count, as for RLIMIT_NPROC) currently owned by ``uid``.

    Args:
        uid: The user id.

    Returns:
        The number of tasks.
    """
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


# --------------------------------------------------------------------------
# The throw-away pids cgroup
# --------------------------------------------------------------------------


class PidsCgroup:
    """A throw-away pids cgroup: caps processes and kills every member at the end.

    Args:
        path: The cgroup's directory.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, name: str, max_pids: int) -> tuple[PidsCgroup | None, str | None]:
        """Make the cgroup; return (cgroup, None) or (None, why not).

        Args:
            name: The cgroup's directory name.
            max_pids: The value of its ``pids.max``.

        Returns:
            The cgroup and None, or None and the reasons it could not be made.
        """
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
        """The cgroup's ``cgroup.procs`` file (a process joins by writing its pid there)."""
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
            kill_pids(pids)
            time.sleep(0.005)

    def remove(self) -> None:
        """Delete the cgroup directory once it is empty.

        Raises:
            SandboxError: It still had members after about a second.
        """
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)  # members still exiting
        raise SandboxError(f"could not remove pids cgroup {self.path}; remove it by hand")


# --------------------------------------------------------------------------
# Work dir and uid
# --------------------------------------------------------------------------


def remove_tree(root: str) -> None:
    """Delete a work dir even if the code made parts of it unreadable (chmod 000).

    Args:
        root: The directory to delete.
    """
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


def chown_tree(root: str, uid: int) -> None:
    """Give ``root`` and everything under it to ``uid`` (user and group).

    Args:
        root: The directory.
        uid: The new owner (also used as the group id).
    """
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chown(dirpath, uid, uid)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), uid, uid)


def throwaway_uid() -> int:
    """A random uid from :data:`SANDBOX_UID_RANGE` for one run as root.

    Returns:
        The uid.
    """
    low, high = SANDBOX_UID_RANGE
    return low + secrets.randbelow(high - low)


# --------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------


@dataclass
class RunPlan:
    """Everything a backend decides before starting a run.

    Attributes:
        argv: The command line that starts the run.
        uid: The uid the code runs as (the work dir is given to it), or None.
        cgroup: The run's pids cgroup, or None.
        isolation: The isolation reported for this run.
        cleanup: Steps to run after the run, in order.
    """

    argv: list[str]
    uid: int | None = None
    cgroup: PidsCgroup | None = None
    isolation: str = ""
    cleanup: list[Callable[[], None]] = field(default_factory=list)


class ProcessSandbox:
    """Shared machinery: work dir, process start, capped reading, limits, cleanup.

    Subclasses provide :meth:`_plan` (the command line) and may override
    :meth:`_normalize_exit` and :meth:`_sweep`.

    Args:
        python: The interpreter that runs the code; defaults to ``sys.executable``.
        default_limits: Limits for runs that pass none; defaults to :class:`SandboxLimits`'s.
    """

    isolation: str = "process"
    guarantees: frozenset[str] = frozenset()
    backend: str = "process"  # copied into every result, with ``warning``
    warning: str = ""

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
        """Run ``code`` as ``main.py`` in a fresh work dir holding ``files``; never raises for bad code.

        Args:
            code: The Python source to run.
            files: Extra files for the work dir, by relative path.
            limits: Resource limits for this run; None means ``default_limits``.

        Returns:
            What the run produced.

        Raises:
            TypeError: ``code`` is not a str.
            ValueError: A file path or content is invalid (see :func:`validate_files`).
            SandboxError: The sandbox itself could not run the code.
        """
        if not isinstance(code, str):
            raise TypeError(f"sandbox code must be str, got {type(code).__name__}")
        extra = validate_files(files)
        limits = limits or self.default_limits
        run_id = secrets.token_hex(8)
        workdir = tempfile.mkdtemp(prefix=WORKDIR_PREFIX)
        plan: RunPlan | None = None
        try:
            self._write_files(workdir, code, extra)
            plan = self._plan(workdir, run_id, limits)
            if plan.uid is not None:
                chown_tree(workdir, plan.uid)
            return self._execute(plan, workdir, run_id, limits)
        finally:
            if plan is not None:
                for step in plan.cleanup:
                    step()
            remove_tree(workdir)

    # -- hooks ---------------------------------------------------------------

    def _plan(self, workdir: str, run_id: str, limits: SandboxLimits) -> RunPlan:
        """Decide how to start the run (the backend's part)."""
        raise NotImplementedError

    def _normalize_exit(self, code: int) -> int:
        """Map the started command's exit status to the code's own (``-signal`` for a signal)."""
        return code

    def _sweep(self, plan: RunPlan, run_id: str) -> None:
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

    def _execute(self, plan: RunPlan, workdir: str, run_id: str, limits: SandboxLimits) -> SandboxResult:
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
            kill_group(proc.pid)  # leftovers in the group, or everything on error
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
            backend=self.backend,
            warning=self.warning,
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
                    kill_group(proc.pid)
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
                    kill_group(proc.pid)
                    return "output"
            remaining = deadline - time.monotonic()
            try:
                proc.wait(timeout=max(remaining, 0))
            except subprocess.TimeoutExpired:
                kill_group(proc.pid)
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
