"""The auction memory's own error."""

from __future__ import annotations

from sale_graph.errors import SaleError


class MemoryStoreError(SaleError, RuntimeError):
    """The memory store cannot do what was asked (unreachable server, wrong embedder, bad file)."""
