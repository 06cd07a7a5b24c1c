"""Runs that call the pool's models and write a log: ``sale bench record`` and ``sale bench live``.

:mod:`.record` runs every agent on every task through the graph's node functions (the market
log), with, unless ``--no-classifier``, one text-classifier call per task (:mod:`.classifier_call`);
:mod:`.live` runs the compiled graph, with memory, in seeded task orders (live records).
"""
