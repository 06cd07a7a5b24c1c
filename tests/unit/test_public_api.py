"""The public names of ``sale_graph``: its three lists agree, every name imports, the package stays light.

``sale_graph/__init__.py`` names each public object three times, by hand: in the
``TYPE_CHECKING`` imports (for type checkers and editors), in the ``_LAZY`` table
(name -> module, imported on first use) and in ``__all__``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import sale_graph
import sale_graph.errors

INIT = Path(sale_graph.__file__)


def _lists() -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(TYPE_CHECKING imports as name -> module, the ``_LAZY`` table, ``__all__``), read from the source."""
    typed: dict[str, str] = {}
    lazy: dict[str, str] | None = None
    names: list[str] | None = None
    for node in ast.parse(INIT.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module, "only `from x import y` in the TYPE_CHECKING block"
                for alias in imp.names:
                    assert alias.name not in typed, f"{alias.name} imported twice under TYPE_CHECKING"
                    typed[alias.asname or alias.name] = imp.module
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "_LAZY":
            assert node.value is not None
            lazy = ast.literal_eval(node.value)
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            names = ast.literal_eval(node.value)
    assert lazy is not None and names is not None, "sale_graph/__init__.py lost its _LAZY table or __all__"
    return typed, lazy, names


def test_all_the_lazy_table_and_the_type_checking_imports_list_the_same_names() -> None:
    typed, lazy, names = _lists()
    assert len(names) == len(set(names)), "a name is listed twice in __all__"
    assert set(names) - set(lazy) == set(), "in __all__ but not in _LAZY"
    assert set(lazy) - set(names) == set(), "in _LAZY but not in __all__"
    assert set(names) - set(typed) == set(), "in __all__ but not imported under TYPE_CHECKING"
    assert set(typed) - set(names) == set(), "imported under TYPE_CHECKING but not in __all__"
    assert {n: m for n, m in typed.items() if lazy[n] != m} == {}, "TYPE_CHECKING and _LAZY name different modules"


@pytest.mark.parametrize("name", sale_graph.__all__)
def test_every_public_name_imports_from_the_module_the_table_names(name: str) -> None:
    _, lazy, _ = _lists()
    value = getattr(sale_graph, name)
    assert getattr(importlib.import_module(lazy[name]), name) is value
    assert name in dir(sale_graph)


def test_every_error_of_a_run_is_public_and_a_sale_error() -> None:
    from sale_graph import AuctionError, EndpointError, ExecutionError, ResumeError  # the names the docs use

    errors = {n: c for n, c in vars(sale_graph.errors).items() if inspect.isclass(c) and issubclass(c, Exception)}
    assert {AuctionError, EndpointError, ExecutionError, ResumeError} <= set(errors.values())
    for name, cls in errors.items():
        assert cls.__module__ == "sale_graph.errors", f"{name} is defined in {cls.__module__}, not in sale_graph.errors"
        assert issubclass(cls, sale_graph.errors.SaleError)
        assert getattr(sale_graph, name) is cls, f"{name} is not exported from sale_graph"


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        _ = sale_graph.not_a_name  # type: ignore[attr-defined]


def test_importing_the_package_imports_nothing_heavy() -> None:
    """``import sale_graph`` (and so ``sale --help``'s first import) loads no LangGraph, LangChain or OpenAI client."""
    code = (
        "import sys, sale_graph\n"
        "heavy = ('langgraph', 'langchain', 'langchain_core', 'langchain_openai', 'openai', 'chromadb', 'httpx')\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=INIT.parent.parent)
    assert out.stdout.strip() == ""
