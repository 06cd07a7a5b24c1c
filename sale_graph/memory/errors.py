"""The auction memory's own error."""

from __future__ import annotations


class MemoryStoreError(RuntimeError):
    """The memory store cannot do what was asked (unreachable server, wrong embedder, bad file)."""
