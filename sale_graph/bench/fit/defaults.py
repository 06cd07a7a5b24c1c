"""Defaults of the weight fit, in a module light enough for the CLI to import at start-up.

The default objective was chosen by the figures in docs/benchmarks.md ("Which objective"): a
SYNTHETIC signal sweep (753 tasks, 6 signal levels, 2 seeds) where every objective was fitted on
the same dev tasks and judged on the test tasks' mean regret. ``minmax`` (two stages) had the
lowest (0.222 against 0.225-0.227) and was solved to its gap most often (6 of 12 markets against
1 for ``cvar``); the differences between objectives were within noise.
"""

from __future__ import annotations

OBJECTIVES = ("minmax", "binmax", "cvar", "mean")
DEFAULT_OBJECTIVE = "minmax"
DEFAULT_CVAR_ALPHA = 0.9
DEFAULT_GAP = 1e-6
DEFAULT_TOLERANCE = 0.01
