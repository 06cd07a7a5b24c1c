"""A user app with its own ``tools.py`` next to it (as ``langgraph dev`` and Jupyter run them) keeps it.

The app's folder comes first on ``sys.path``. Our executor tools install only as
``sale_graph.tools``, so a coding auction still runs its code tool in the sandbox,
and ``import tools`` still gives the user's module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]

USER_TOOLS = '''
def search_web(query: str) -> str:
    """The user's own tool, nothing to do with sale_graph."""
    return "user tool: " + query
'''

APP = textwrap.dedent('''
    import json
    import sys

    import tools  # the user's tools.py, first on sys.path like langgraph dev / Jupyter
    from langchain_core.messages import AIMessage

    from sale_graph import SaleContext, build_sale_graph
    from tests.fakes import FakeFactory, pool_of

    steps = []

    def execute(agent, messages):
        if not steps:
            steps.append(1)
            call = {"name": "run_python", "args": {"code": "print(6 * 7)"}, "id": "c1", "type": "tool_call"}
            return AIMessage(content="", tool_calls=[call], usage_metadata={"input_tokens": 3, "output_tokens": 3, "total_tokens": 6})
        observed = str(messages[-1].content)  # the run_python result the executor fed back
        return "Final Answer: " + ("42" if "42" in observed else "no output: " + observed.replace(chr(10), " "))

    factory = FakeFactory({
        "bid": lambda a, m: "1. write the code 2. run it 3. report",
        "jury": lambda a, m: "SCORE: 4",
        "execute": execute,
    })
    graph = build_sale_graph(model_factory=factory).compile()
    ctx = SaleContext(pool=pool_of(("small", 0.05), ("large", 0.36)), check_endpoints=False, use_memory=False)
    out = graph.invoke({"task": "Print six times seven.", "domain": "coding"}, context=ctx)
    print(json.dumps({
        "user_tools": tools.search_web("q"),
        "user_tools_file": tools.__file__,
        "tool_calls": out["execution"]["tool_calls"],
        "answer": out["answer"],
        "sale_tools": sys.modules["sale_graph.tools"].__file__,
    }))
''')


def test_a_coding_auction_runs_beside_the_users_own_tools_py(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text(USER_TOOLS)
    (tmp_path / "app.py").write_text(APP)
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # for tests.fakes; the app's folder still comes first
    proc = subprocess.run([sys.executable, "app.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["user_tools"] == "user tool: q"
    assert Path(result["user_tools_file"]).resolve() == (tmp_path / "tools.py").resolve()
    assert result["tool_calls"] == 1
    assert result["answer"] == "42"  # the sandbox ran the code and the executor saw its output
    assert Path(result["sale_tools"]).resolve() == (REPO / "tools" / "__init__.py").resolve()
