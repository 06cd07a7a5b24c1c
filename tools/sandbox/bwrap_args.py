"""Pure builders of the bubblewrap command line: mounts, isolation flags and exit-code mapping.

Nothing here starts a process; every function is unit tested on its own.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable, Sequence
from pathlib import PurePosixPath

from sale_graph.tools.sandbox.base import BWRAP_TMPFS_BYTES

#: Roots that get an empty private tmpfs inside the sandbox.
PRIVATE_ROOTS = ("/tmp",)


def bwrap_exit_code(code: int) -> int:
    """Map bubblewrap's ``128 + signal`` convention back to Popen's ``-signal``.

    Args:
        code: The exit status bubblewrap reported.

    Returns:
        ``-signal`` for a signal death, else ``code`` unchanged.
    """
    if 128 < code < 128 + 65:
        return -(code - 128)
    return code


def blocked_ancestor(path: str, mode_of: Callable[[str], int]) -> str | None:
    """The top-most proper ancestor of ``path`` that other users cannot traverse, or None.

    Used to decide which directory (e.g. ``/root`` holding a pyenv Python) must
    be masked and the interpreter re-bound so an unprivileged uid can run it.

    Args:
        path: An absolute path.
        mode_of: Returns the ``st_mode`` of a path (``os.stat`` in production).

    Returns:
        The blocked ancestor, or None if every ancestor is world-traversable.
    """
    parts = PurePosixPath(path).parts
    current = PurePosixPath("/")
    for part in parts[1:-1]:
        current = current / part
        if not mode_of(str(current)) & stat.S_IXOTH:
            return str(current)
    return None


def python_mounts(paths: Iterable[str], mode_of: Callable[[str], int]) -> list[str]:
    """The bwrap arguments that make ``paths`` reachable for an unprivileged uid.

    Each blocked ancestor becomes an empty tmpfs; the needed paths are bound back
    read-only at the same location (so venv symlinks keep working), with the
    directories between them created world-traversable.

    Args:
        paths: Absolute paths the interpreter needs.
        mode_of: Returns the ``st_mode`` of a path (``os.stat`` in production).

    Returns:
        The bwrap arguments (empty when every path is reachable already).
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


def private_root_binds(paths: Iterable[str], private_roots: Sequence[str] = PRIVATE_ROOTS) -> list[str]:
    """The bwrap arguments that bind back, read-only, needed paths that live under a private tmpfs.

    The sandbox gets an empty ``/tmp``: an interpreter or virtualenv installed under
    ``/tmp`` (a CI checkout, say) would vanish without these binds.

    Args:
        paths: Absolute paths the interpreter needs.
        private_roots: Roots that are private (empty) inside the sandbox.

    Returns:
        The bwrap arguments (empty when no path lies under a private root).
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
    """The bubblewrap command line for one run (read-only root, private /tmp, no network).

    Args:
        bwrap: Path of the ``bwrap`` executable.
        workdir: The run's work dir, bound read-write.
        as_root: Whether the host runs as root (then no user namespace is used).
        extra_mounts: Further bwrap mount arguments (see :func:`python_mounts`).
        command: The command to run inside the sandbox.

    Returns:
        The full argv, ``command`` last.
    """
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
