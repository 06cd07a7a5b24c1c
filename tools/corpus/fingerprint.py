"""Fingerprints of a corpus source, so that an index is rebuilt only when its source changed.

A fingerprint holds the size and mtime of the source (cheap, compared on each
open) and a SHA-256 of its content (computed only when the cheap part differs,
so that a touched but identical file does not trigger a rebuild).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sale_graph.tools.corpus.documents import iter_text_files

__all__ = ["source_fingerprint"]


def _sha256_files(paths: Sequence[Path], root: Path | None = None) -> str:
    """SHA-256 over the files' relative names and contents, in order."""
    h = hashlib.sha256()
    for p in paths:
        if root is not None:
            h.update(p.relative_to(root).as_posix().encode("utf-8") + b"\0")
        with p.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def _quick_stat(path: Path) -> dict[str, Any]:
    """Size and mtime of a file, or of every text file in a folder: cheap to compare on each open."""
    if path.is_dir():
        files = iter_text_files(path)
        stats = [(p.relative_to(path).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        return {"kind": "folder", "files": len(files), "stat": hashlib.sha256(repr(stats).encode()).hexdigest()}
    st = path.stat()
    return {"kind": "file", "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def source_fingerprint(source: str | os.PathLike[str], with_hash: bool = True) -> dict[str, Any]:
    """Fingerprint of a corpus source: size/mtime (cheap) and, with ``with_hash``, a SHA-256 of the content.

    Args:
        source: A folder of text files or a JSONL file.
        with_hash: Also hash the content (key ``sha256``).

    Returns:
        A JSON-serialisable dict; equal dicts mean an unchanged source.
    """
    path = Path(source).expanduser().resolve()
    fp = _quick_stat(path)
    if with_hash:
        fp["sha256"] = _sha256_files(iter_text_files(path), path) if path.is_dir() else _sha256_files([path])
    return fp
