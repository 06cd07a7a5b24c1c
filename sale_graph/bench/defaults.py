"""Defaults of the weight fit, in a module light enough for the CLI to import at start-up.

The default objective and its settings were chosen by the figures in docs/benchmarks.md
("Which objective"): a SYNTHETIC signal sweep where every objective was fitted on the same
dev tasks and judged on the test tasks' mean regret.
"""

from __future__ import annotations

OBJECTIVES = ("minmax", "binmax", "cvar", "mean")
DEFAULT_OBJECTIVE = "cvar"
DEFAULT_CVAR_ALPHA = 0.9
DEFAULT_GAP = 1e-6
DEFAULT_TOLERANCE = 0.01
