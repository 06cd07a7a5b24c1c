"""The notebooks run top to bottom (nbclient, cwd notebooks/) and write their figures under notebooks/out/."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
OUT = NOTEBOOKS / "out"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _execute(name: str, timeout_s: int = 600) -> Any:
    """Run a copy of the notebook in memory (the file on disk is left as is) and return it."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    for needed in ("ipykernel", "matplotlib"):
        pytest.importorskip(needed, reason="the notebooks need the notebooks extra: pip install -e '.[notebooks]'")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=timeout_s, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    return nb


def _text_outputs(nb: Any) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out["text"])
    return "\n".join(parts)


def _fresh_png(path: Path, since: float) -> None:
    assert path.is_file(), f"{path} was not written"
    assert path.stat().st_mtime >= since, f"{path} is left over from an earlier run"
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5_000, path


@pytest.mark.parametrize("name", ["quickstart.ipynb", "experiments.ipynb"])
def test_notebooks_are_saved_without_outputs(name: str) -> None:
    nb = json.loads((NOTEBOOKS / name).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), f"{name} has outputs; clear them before saving"


def test_experiments_notebook_draws_the_figures() -> None:
    start = time.time() - 1
    nb = _execute("experiments.ipynb")
    for fig in ("pass_and_cost_by_bin.png", "pareto.png", "largest_share.png"):
        _fresh_png(OUT / fig, start)
    text = _text_outputs(nb)
    assert "ILLUSTRATIVE SAMPLE DATA - not measurements" in text
    # The sample data's frontier, computed by the notebook: SALE is on it, the largest agent is not.
    frontier = next(line for line in text.splitlines() if line.startswith("on the frontier:"))
    assert "SALE" in frontier and "largest" not in frontier


def test_experiments_notebook_rejects_a_malformed_results_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbclient = pytest.importorskip("nbclient")
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps({"sale": {"0-0.1": {"pass_at_1": 0.5, "cost_usd": 1.0}}}))
    monkeypatch.setenv("SALE_RESULTS", str(bad))
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="lacks dollars_per_mtok, largest_share"):
        _execute("experiments.ipynb")


def test_quickstart_notebook_runs_an_auction(embedded_server: Any) -> None:
    start = time.time() - 1
    nb = _execute("quickstart.ipynb")
    _fresh_png(OUT / "sale_graph.png", start)
    mermaid = (OUT / "sale_graph.mmd").read_text()
    assert "graph TD" in mermaid and "select -.-> refine" in mermaid and "refine --> score" in mermaid
    report = (OUT / "auction_report.txt").read_text()
    assert (OUT / "auction_report.txt").stat().st_mtime >= start
    for agent in ("smollm2-135m", "gemma3-270m"):
        assert agent in report
    assert "Winner:" in report and "Ledger" in report
    text = _text_outputs(nb)
    progress = [line.split()[1] for line in text.splitlines() if re.match(r"^\s*\d+\.\ds  \w", line)]
    assert progress[:7] == ["bid"] * 2 + ["jury"] * 4 + ["select"]  # printed as the events arrived
    assert "auction share of tokens" in text
    # The servers were already up (fixture), so the notebook started and stopped nothing.
    assert "started: nothing" in text and "stopped: nothing" in text
