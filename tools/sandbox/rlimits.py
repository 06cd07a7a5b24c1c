"""The rlimits-only backend: a plain subprocess with resource limits; weak isolation, used only by opt-in."""

from __future__ import annotations

import os
import secrets
import time

from sale_graph.tools.sandbox.base import (
    MAIN_SCRIPT,
    RLIMIT_GUARANTEES,
    RUN_ID_VAR,
    WEAK_ISOLATION_WARNING,
    WORKDIR_PREFIX,
    SandboxLimits,
)
from sale_graph.tools.sandbox.launcher import launcher_command
from sale_graph.tools.sandbox.policy import rlimit_plan
from sale_graph.tools.sandbox.process import (
    PidsCgroup,
    ProcessSandbox,
    RunPlan,
    count_tasks_of_uid,
    kill_pids,
    pids_with_env_marker,
)


class RlimitSandbox(ProcessSandbox):
    """A plain subprocess with rlimits: weak isolation, for users who opt into it.

    Lacks: network isolation, filesystem isolation (the code can write wherever
    the host user can), hiding of host processes (``/proc/<pid>/environ`` of
    same-user processes is readable) and a guaranteed end of daemonised
    processes (they are swept by cgroup or by the run id in their environment).
    When the host runs as root the process cap needs a writable pids cgroup.
    Every result carries ``backend == "rlimits"`` and ``warning`` is
    :data:`~sale_graph.tools.sandbox.base.WEAK_ISOLATION_WARNING`.

    Args:
        python: The interpreter that runs the code; defaults to ``sys.executable``.
        default_limits: Limits for runs that pass none.
    """

    backend = "rlimits"
    warning = WEAK_ISOLATION_WARNING

    def __init__(self, python: str | None = None, default_limits: SandboxLimits | None = None) -> None:
        super().__init__(python, default_limits)
        self.as_root = os.geteuid() == 0
        self.isolation = "rlimits-only"
        self.guarantees = RLIMIT_GUARANTEES
        if self.as_root:
            cgroup, why = PidsCgroup.create(f"{WORKDIR_PREFIX}probe-{secrets.token_hex(4)}", 1)
            if cgroup is None:
                self.isolation = f"rlimits-only (no process cap: running as root and no pids cgroup: {why})"
                self.guarantees = RLIMIT_GUARANTEES - {"processes"}
            else:
                cgroup.remove()

    def _plan(self, workdir: str, run_id: str, limits: SandboxLimits) -> RunPlan:
        cgroup: PidsCgroup | None = None
        nproc: int | None = None
        isolation = self.isolation
        if self.as_root:
            cgroup, why = PidsCgroup.create(f"{WORKDIR_PREFIX}{run_id}", limits.max_processes)
            if cgroup is None and "no process cap" not in isolation:
                isolation = f"rlimits-only (no process cap this run: {why})"
        else:
            # RLIMIT_NPROC counts every task of the user, so allow the ones already running.
            nproc = count_tasks_of_uid(os.getuid()) + limits.max_processes
        rlimits = rlimit_plan(limits, nproc)
        argv = launcher_command(self.python, MAIN_SCRIPT, rlimits, None, cgroup.procs_file if cgroup else None)
        plan = RunPlan(argv=argv, cgroup=cgroup, isolation=isolation)
        if cgroup is not None:
            plan.cleanup.append(cgroup.remove)
        return plan

    def _sweep(self, plan: RunPlan, run_id: str) -> None:
        if plan.cgroup is not None:
            plan.cgroup.kill_all()
        marker = f"{RUN_ID_VAR}={run_id}".encode()
        for _ in range(20):
            pids = pids_with_env_marker(marker)
            if not pids:
                return
            kill_pids(pids)
            time.sleep(0.01)
