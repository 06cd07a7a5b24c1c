"""Market logs: the append-only JSONL file (:mod:`.log`) and the market it holds, as arrays (:mod:`.market`, :mod:`.parse`).

Only reading and writing records lives here (numpy, no model calls); the commands that call
models to fill a log are in :mod:`sale_graph.bench.runs`.
"""
