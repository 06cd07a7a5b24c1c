"""The ``sale`` command and what it prints.

- :mod:`~sale_graph.cli.commands`: the command line (``sale run``, ``sale pool check``,
  ``sale serve``, and the ``memory`` and ``bench`` sub-commands their packages register).
- :mod:`~sale_graph.cli.gateway`: ``sale gateway``, the OpenAI-compatible endpoint.
- :mod:`~sale_graph.cli.args`: the parser class and argument types of the command line
  (one-line usage errors, exit code 2).
- :mod:`~sale_graph.cli.report`: summaries of an auction's state (ledger totals,
  overhead) and the tables ``sale run`` prints.
- :mod:`~sale_graph.cli.calibrate`: ``sale calibrate``, the cost weight from route-only
  auctions on the user's own tasks (:mod:`sale_graph.calibrate`).

``sale run`` runs the auction with :func:`sale_graph.runner.run_auction`, which the
benchmark harness and the notebooks use too.

``sale`` is :func:`main` (``python -m sale_graph.cli`` runs it too).
"""

from sale_graph.cli.commands import main

__all__ = ["main"]
