"""The benchmark harness, one sub-package per concept.

* :mod:`.tasks`: task sets (schema, JSONL files, bins, offline datasets);
* :mod:`.market`: market logs (the JSONL file, the market as arrays);
* :mod:`.runs`: the commands that call models and write logs (``record``, ``live``);
* :mod:`.routers`: routers replayed on a market log (base interface and backends);
* :mod:`.fit`: the weight fit (two-stage MILP, ablations, provenance);
* :mod:`.report`: the report (statistics, curves, live section, markdown, figures);
* :mod:`.synthetic`: SYNTHETIC markets and the signal sweep;
* :mod:`.cli`: ``sale bench tasks | record | fit | report | live | synthetic | sweep``.

Each sub-package imports only from those listed before it (``tests/unit/bench/test_layout.py``
keeps it so). Nothing here runs on import.
"""
