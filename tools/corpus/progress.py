"""Progress reports while a corpus index is embedded (the slow part of a build)."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

__all__ = ["ProgressFn", "StderrProgress"]

#: A progress callback: ``(chunks embedded so far, chunks to embed)``.
ProgressFn = Callable[[int, int], None]


class StderrProgress:
    """Progress callback printing ``done/total``, rate and ETA to stderr, at most every ``every_s`` seconds.

    Args:
        label: What is being indexed, printed at the start of each line.
        every_s: Least time between two lines (the last one is always printed).
    """

    def __init__(self, label: str, every_s: float = 5.0) -> None:
        self.label = label
        self.every_s = every_s
        self._start = time.perf_counter()
        self._last = -math.inf

    def __call__(self, done: int, total: int) -> None:
        """Report that ``done`` of ``total`` chunks are embedded (skipped if the last line is too recent).

        Args:
            done: Chunks embedded so far.
            total: Chunks to embed in this build.
        """
        now = time.perf_counter()
        if done < total and now - self._last < self.every_s:
            return
        self._last = now
        elapsed = now - self._start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else float("nan")
        print(
            f"[sale-graph] {self.label}: {done}/{total} chunks embedded ({rate:.1f}/s, elapsed {elapsed:.0f} s, ETA {eta:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
