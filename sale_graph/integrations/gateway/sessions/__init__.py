"""Sessions: a conversation pinned to the winner of its auction, behind a small async interface.

- :mod:`~sale_graph.integrations.gateway.sessions.base`: :class:`Pin` and the :class:`SessionStore` interface;
- :mod:`~sale_graph.integrations.gateway.sessions.inprocess`: :class:`InProcessSessions`, pins in this process.
"""

from sale_graph.integrations.gateway.sessions.base import Pin, SessionStore
from sale_graph.integrations.gateway.sessions.inprocess import InProcessSessions

__all__ = ["InProcessSessions", "Pin", "SessionStore"]
