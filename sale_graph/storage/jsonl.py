"""Reading JSONL files with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def iter_jsonl(fh: IO[str], source: str | Path, error: type[Exception]) -> Iterator[tuple[str, int, Any]]:
    """Yield ``(where, line number, parsed value)`` for each non-blank line of an open JSONL file.

    ``where`` is ``"FILE:LINE"`` for the caller's own messages; a line that is not
    JSON raises ``error`` with that location.
    """
    for lineno, line in enumerate(fh, 1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            yield where, lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); each line must be one JSON value") from exc
