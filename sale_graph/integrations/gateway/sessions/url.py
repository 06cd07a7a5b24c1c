"""The session store a URL names (``sale gateway --sessions URL``, ``create_gateway_app(sessions=URL)``).

| URL | store | for |
|---|---|---|
| ``memory://`` (the default) | :class:`~.inprocess.InProcessSessions` | one worker |
| ``sqlite:///sessions.db``, ``sqlite:////var/lib/sale/sessions.db`` | :class:`~.sqlite.SqliteSessions` | several workers on one machine |
| ``postgresql://user:pass@host:5432/db`` (or ``postgres://``) | :class:`~.postgres.PostgresSessions` | several machines |

A SQLite path follows SQLAlchemy's form: after ``sqlite:///`` comes the path, relative to
the working directory unless it starts with ``/`` (so an absolute path has four slashes).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from sale_graph.errors import SaleError
from sale_graph.integrations.gateway.sessions.base import SessionStore
from sale_graph.integrations.gateway.sessions.inprocess import InProcessSessions

FLAG = "--sessions"
FORMS = "memory://, sqlite:///PATH or postgresql://USER:PASS@HOST:PORT/DB"


class SessionsError(SaleError, ValueError):
    """A session store URL that names no store, or one whose driver is not installed."""


def _need(module: str, extra: str, url_kind: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise SessionsError(f"{FLAG}: {url_kind} sessions need {module} (pip install \"sale-graph[{extra}]\")")


def open_sessions(url: str | None, idle_s: float) -> SessionStore:
    """The session store ``url`` names; it connects on first use (see the module docstring).

    Args:
        url: the store's URL; ``None`` or empty: in this process.
        idle_s: seconds a pin lives after its last use.

    Raises:
        SessionsError: the URL names no store, its SQLite folder does not exist, or its driver is missing.
    """
    text = (url or "").strip()
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not text or (scheme == "memory" and sep and not rest):
        return InProcessSessions(idle_s)
    if scheme == "sqlite" and sep:
        if not rest.startswith("/") or rest in ("/", "/:memory:"):
            raise SessionsError(f"{FLAG} {text!r}: a SQLite store is a file shared by the workers, sqlite:///PATH")
        path = Path(rest[1:]).expanduser()
        if not path.parent.is_dir():
            raise SessionsError(f"{FLAG} {text!r}: the folder {str(path.parent)!r} does not exist")
        _need("aiosqlite", "scale", "SQLite")
        from sale_graph.integrations.gateway.sessions.sqlite import SqliteSessions

        return SqliteSessions(path.resolve(), idle_s)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg") and sep:
        _need("psycopg_pool", "scale", "Postgres")
        from sale_graph.integrations.gateway.sessions.postgres import PostgresSessions

        return PostgresSessions("postgresql://" + rest, idle_s)
    shown = text if "@" not in text else scheme + "://..."  # never echo a password
    raise SessionsError(f"{FLAG} {shown!r}: not a session store URL; use {FORMS}")


async def check_sessions(store: SessionStore) -> int:
    """Reach the store once (its table is created when missing) and close it; the pins alive in it.

    Raises:
        SessionsError: the store cannot be reached (its message says why, without the URL's password).
    """
    try:
        return await store.count()
    except Exception as exc:  # any driver's failure to connect becomes one line naming the flag
        raise SessionsError(f"{FLAG}: cannot open the session store {store!r}: {type(exc).__name__}: {exc}") from exc
    finally:
        await store.close()


__all__ = ["FLAG", "FORMS", "SessionsError", "check_sessions", "open_sessions"]
