"""The README's gateway example runs as written: ``sale gateway`` in a process of its own, then the ``curl`` call.

Only the pool file (a TOML for the loopback wire server) and the port (a free one) are
substituted; the command runs through the ``sale`` CLI's module, the call through
``bash`` and the system's ``curl``.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.contract.sale_apps import LARGE_PLAN, behaviours, chats, write_pool
from tests.contract.wire_server import WireServer

pytestmark = pytest.mark.contract

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def readme_example() -> tuple[list[str], str]:
    """The README's gateway example: the ``sale gateway`` command's words and the ``curl`` command (one line)."""
    block = re.search(r"<!-- gateway-example -->\n```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert block, "README.md lost its gateway example (the bash block after <!-- gateway-example -->)"
    lines = block.group(1).replace("\\\n", " ").splitlines()
    serve = next(line for line in lines if line.startswith("sale gateway "))
    call = next(line for line in lines if line.startswith("curl "))
    return shlex.split(serve, comments=True), call


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer(behaviours()) as server:
        yield server


def test_the_readme_curl_example_gets_the_auctions_winners_answer(wire: WireServer, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    words, call = readme_example()
    assert words[:2] == ["sale", "gateway"] and "--pool" in words and "--port" in words
    pool, port = write_pool(tmp_path / "pool.toml", wire), _free_port()
    args = [str(pool) if w == "pool.toml" else str(port) if w == "8100" else w for w in words[2:]]
    log = tmp_path / "gateway.log"
    proc = subprocess.Popen([sys.executable, "-m", "sale_graph.cli", "gateway", *args], cwd=REPO, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sale gateway did not start:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        run = subprocess.run(["bash", "-c", call.replace("8100", str(port))], capture_output=True, text=True, timeout=60)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["choices"][0]["message"]["content"] == "Final Answer: 5"
    assert answer["sale"]["winner"] == "large" and answer["sale"]["strategy"] == LARGE_PLAN
    assert proc.returncode == 0, log.read_text(errors="replace")[-3000:]
    assert "SALE gateway on http://127.0.0.1" in log.read_text(errors="replace")
    assert [r.model for r in chats(wire, "agent")] == ["large"]
