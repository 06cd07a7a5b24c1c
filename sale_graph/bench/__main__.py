"""``python -m sale_graph.bench``: the benchmark harness without the main ``sale`` CLI."""

from sale_graph.bench.cli.commands import main

raise SystemExit(main())
