"""The errors of the local search corpus."""

from __future__ import annotations

from sale_graph.errors import SaleError

__all__ = ["CorpusError", "MissingExtraError"]


class CorpusError(SaleError, ValueError):
    """A corpus source or setting is invalid; the message names the input at fault and the fix."""


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message says which extra to install."""
