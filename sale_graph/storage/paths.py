"""Where sale-graph keeps its state on disk.

Every piece of state the project keeps (auction memory, search indexes, server
logs, assembled model weights, benchmark logs) lives under one data directory so
that a user can inspect, back up or delete it in one place.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "SALE_HOME"


def sale_home() -> Path:
    """Return the data directory: ``$SALE_HOME`` if set, else a per-user data folder.

    The per-user folder follows the XDG convention (``$XDG_DATA_HOME/sale-graph``,
    default ``~/.local/share/sale-graph``). The directory is created on first use.
    """
    explicit = os.environ.get(ENV_HOME)
    if explicit:
        home = Path(explicit).expanduser()
    else:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        home = Path(base).expanduser() / "sale-graph"
    home.mkdir(parents=True, exist_ok=True)
    return home


def data_path(*parts: str) -> Path:
    """Return a path under :func:`sale_home`, creating its parent directory."""
    path = sale_home().joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
