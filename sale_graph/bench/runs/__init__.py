"""Runs that call the pool's models and write a log: ``sale bench record`` (:mod:`.record`) and ``sale bench live`` (:mod:`.live`).

``record`` runs every agent on every task through the graph's node functions (the market log);
``live`` runs the compiled graph, with memory, in seeded task orders (live records).
"""
