"""What can be wrong with a calibration's input or target (:class:`CalibrationError`)."""

from __future__ import annotations

from sale_graph.errors import SaleError


class CalibrationError(SaleError, ValueError):
    """Bad calibration input (a task file, a target, a pool, a log) or a target no cost weight meets.

    A :class:`~sale_graph.errors.SaleError`: the ``sale`` command prints its one line and exits with 2.
    """
