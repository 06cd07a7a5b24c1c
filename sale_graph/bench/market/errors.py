"""What can be wrong with a market log: the file (:class:`LogError`) or the records in it (:class:`MarketError`).

Both are raised while reading a log (:mod:`.log`) and building its market (:mod:`.parse`,
:mod:`.market`); they live here so that those modules import downwards only.
"""

from __future__ import annotations

from sale_graph.errors import SaleError


class LogError(SaleError, ValueError):
    """A market log is malformed; the message names the file and line."""


class MarketError(SaleError, ValueError):
    """The records cannot form one market (different pools, missing parts, a live record)."""
