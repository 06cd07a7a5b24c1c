"""``sale calibrate``: the cost weight for your pool, from route-only auctions on your own unlabelled tasks.

* :mod:`.tasks`: the task file (one task per line, or JSONL);
* :mod:`.record`: route-only auctions kept as a market log (kind ``route``);
* :mod:`.solve`: the cost weight solved exactly on the recorded table (breakpoints of ``argmin (C - V)``);
* :mod:`.calibration`: :func:`calibrate_weights`, the whole job, and the weights file it writes.

The command's line interface is in :mod:`sale_graph.cli.calibrate`.
"""

from sale_graph.calibrate.calibration import Calibration, calibrate_weights
from sale_graph.calibrate.errors import CalibrationError
from sale_graph.calibrate.record import TaskProgress
from sale_graph.calibrate.solve import DEFAULT_EXECUTION_TOKENS, AuctionTable, Solution, Target, solve_cost_weight
from sale_graph.calibrate.tasks import CalibrationTask, read_task_file

__all__ = [
    "DEFAULT_EXECUTION_TOKENS",
    "AuctionTable",
    "Calibration",
    "CalibrationError",
    "CalibrationTask",
    "Solution",
    "Target",
    "TaskProgress",
    "calibrate_weights",
    "read_task_file",
    "solve_cost_weight",
]
