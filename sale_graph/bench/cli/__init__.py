"""The ``sale bench`` command group: handlers (:mod:`.commands`) and their arguments (:mod:`.args`).

``python -m sale_graph.bench`` runs the same commands without the main ``sale`` CLI.
"""
