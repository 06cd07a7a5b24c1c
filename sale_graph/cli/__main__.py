"""``python -m sale_graph.cli``: the ``sale`` command."""

from sale_graph.cli.commands import main

raise SystemExit(main())
