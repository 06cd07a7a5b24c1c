"""``sale bench report``: every router replayed on a market log, live runs, and the files written.

:mod:`.build` (the report and its files), :mod:`.stats` (intervals, paired differences),
:mod:`.curves` (cost-quality curves, AIQ, dominance), :mod:`.live` (the live runs' section),
:mod:`.markdown` (``summary.md``), :mod:`.figures` (the plots).
"""
