"""A Chroma server for the tests: ``chroma run`` from the chromadb package, on a free loopback port.

::

    with chroma_server(tmp_path / "chroma") as url:
        memory = AuctionMemory.from_url(url)
        tasks = stored(url, "sale_tasks")  # what the server holds, read as another machine would

The server keeps its data in ``path / "data"`` and writes its log to ``path / "server.log"``;
it is stopped (terminated, then killed after 15 s) on exit, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

START_S = 60.0
"""How long the server gets to answer its heartbeat."""


def chroma_exe() -> str:
    """The ``chroma`` command next to this Python (the venv's), else on ``PATH``.

    Raises:
        RuntimeError: the chromadb package's command is not installed.
    """
    exe = Path(sys.executable).with_name("chroma")
    found = str(exe) if exe.exists() else shutil.which("chroma")
    if not found:
        raise RuntimeError("the `chroma` CLI (from the chromadb package) is not on PATH or next to the Python executable")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def chroma_server(path: Path) -> Iterator[str]:
    """Run ``chroma run --path <path>/data`` on ``127.0.0.1:<free port>``; yields ``http://127.0.0.1:<port>``.

    Args:
        path: a folder for the server's data and log (created).

    Raises:
        RuntimeError: the server exited, or did not answer its heartbeat within :data:`START_S`.
    """
    path.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with (path / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [chroma_exe(), "run", "--path", str(path / "data"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        )
        try:
            deadline = time.monotonic() + START_S
            while not _answers(url):
                if proc.poll() is not None:
                    raise RuntimeError(f"chroma run exited with {proc.returncode}: "
                                       f"{(path / 'server.log').read_text(errors='replace')[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"chroma run did not answer its heartbeat on {url} within {START_S:.0f} s")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def stored(url: str, collection: str) -> dict[str, Any]:
    """Every entry (ids, documents, metadata) of a memory collection (``sale_tasks``, ``sale_strategies``) on the server at ``url``."""
    import chromadb
    from chromadb.config import Settings

    host, port = url.removeprefix("http://").split(":")
    client = chromadb.HttpClient(host=host, port=int(port), settings=Settings(anonymized_telemetry=False))
    return dict(client.get_collection(collection).get(include=["documents", "metadatas"]))
