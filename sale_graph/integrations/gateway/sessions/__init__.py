"""Sessions: a conversation pinned to the winner of its auction, behind a small async interface.

- :mod:`~sale_graph.integrations.gateway.sessions.base`: :class:`Pin` and the :class:`SessionStore` interface;
- :mod:`~sale_graph.integrations.gateway.sessions.inprocess`: :class:`InProcessSessions`, pins in this process;
- :mod:`~sale_graph.integrations.gateway.sessions.sql`: :class:`SqlSessions`, pins in a table every worker shares;
- :mod:`~sale_graph.integrations.gateway.sessions.sqlite`: :class:`SqliteSessions`, a SQLite file (one machine);
- :mod:`~sale_graph.integrations.gateway.sessions.postgres`: :class:`PostgresSessions`, Postgres (several machines);
- :mod:`~sale_graph.integrations.gateway.sessions.url`: :func:`open_sessions`, the store a URL names.
"""

from sale_graph.integrations.gateway.sessions.base import Pin, SessionStore
from sale_graph.integrations.gateway.sessions.inprocess import InProcessSessions
from sale_graph.integrations.gateway.sessions.postgres import PostgresSessions
from sale_graph.integrations.gateway.sessions.sql import SqlSessions
from sale_graph.integrations.gateway.sessions.sqlite import SqliteSessions
from sale_graph.integrations.gateway.sessions.url import SessionsError, check_sessions, open_sessions

__all__ = ["InProcessSessions", "Pin", "PostgresSessions", "SessionStore", "SessionsError", "SqlSessions",
           "SqliteSessions", "check_sessions", "open_sessions"]
