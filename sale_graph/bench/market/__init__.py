"""Market logs: the append-only JSONL file (:mod:`.log`) and the market it holds, as arrays.

:mod:`.market` (the :class:`~.market.Market` arrays), :mod:`.parse` (records to arrays),
:mod:`.errors` (what can be wrong with a log or its records). Only reading and writing
records lives here (numpy, no model calls); the commands that call models to fill a log
are in :mod:`sale_graph.bench.runs`.
"""
