"""The README's Python example runs as written (against the embedded pool the fixture serves)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_example_runs(embedded_server, tmp_path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "README has no python example"
    run = subprocess.run([sys.executable, "-c", blocks[0]], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines[0].split()[0] in ("smollm2-135m", "gemma3-270m")  # the winner
    rows = lines[-2:]  # one row per bid (the answer above may span several lines)
    assert sorted(r.split()[0] for r in rows) == ["gemma3-270m", "smollm2-135m"]
    assert all(r.split()[1] == "original" for r in rows)
