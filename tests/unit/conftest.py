"""Unit tests run on fakes: none may probe the code sandbox (no bwrap, no subprocess) unless it says so.

A graph built for a unit test with no ``tools`` would check the default tools' sandbox in
``prepare``; such tests pass ``tools=[]`` (or the tools they are about). A test about the
sandbox's logic replaces the probe itself (``monkeypatch.setattr(factory, "probe_bubblewrap", ...)``),
which overrides this guard; a test marked ``integration`` runs real code in the real sandbox.
"""

from __future__ import annotations

import pytest

from sale_graph.tools.sandbox import factory


@pytest.fixture(autouse=True)
def _no_sandbox_probe(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("integration") is not None:
        return
    def refuse(bwrap: str, python: str | None = None) -> str | None:
        pytest.fail(f"a unit test probed the code sandbox ({bwrap}): build the graph with tools=[] or replace the probe")

    monkeypatch.setattr(factory, "probe_bubblewrap", refuse)
