"""The benchmark harness: task sets, market recording, weight fitting, routers and reports.

``sale bench tasks | record | fit | report | live | synthetic | sweep`` (see :mod:`sale_graph.bench.commands`);
nothing here runs on import.
"""
