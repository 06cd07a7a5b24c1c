"""The launcher: trusted code that runs inside the sandbox before the user code."""

from __future__ import annotations

import json

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


def launcher_command(
    python: str, script: str, rlimits: dict[str, tuple[int, int]], uid: int | None, cgroup_procs: str | None
) -> list[str]:
    """The command that prepares the sandboxed process and then execs ``script``.

    Args:
        python: The interpreter that runs the launcher and then the script.
        script: The script to exec (relative to the work dir).
        rlimits: The rlimits to set, as :func:`~sale_graph.tools.sandbox.policy.rlimit_plan` returns them.
        uid: The throw-away uid to switch to, or None to keep the current one.
        cgroup_procs: The ``cgroup.procs`` file to join first, or None.

    Returns:
        The argv of the launcher.
    """
    cfg = {"python": python, "script": script, "rlimits": rlimits, "uid": uid, "cgroup_procs": cgroup_procs}
    return [python, "-I", "-S", "-c", _LAUNCHER, json.dumps(cfg)]
