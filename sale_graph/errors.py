"""The root of the library's own errors.

Every error that reports bad input or an unusable endpoint (a malformed pool or
weights file, an unreachable or refusing endpoint, a jury below its quorum, a task
with no text, a missing search corpus or sandbox...) derives from
:class:`SaleError` as well as from the built-in class it always had (``ValueError``,
``RuntimeError``), so callers can catch either. The ``sale`` command prints a
``SaleError`` as one line naming the input at fault and what to do, and exits
non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class SaleError(Exception):
    """An error the user can fix: its message names the input at fault and what to do."""
