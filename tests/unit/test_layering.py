"""The package's imports run one way, down its layers, and never in a circle.

Read from the source (nothing is imported): every ``import`` of a ``sale_graph`` module
in ``sale_graph/`` and ``tools/`` (installed as ``sale_graph.tools``).

Layers, top to bottom (a module may import its own layer and those below):

* the app layer: everything not listed below (the ways to embed SALE, the ``sale``
  command, the runner, the bench);
* ``graph``;
* the nodes and their machinery: ``nodes``, ``executor``, ``jury``;
* the run's setup: ``context``, ``services``;
* model calls, memory, tools: ``llm``, ``memory``, ``tools``, ``embedded``, ``pool``, ``weights``,
  ``conversation`` (a chat turn's task text);
* the basics: ``errors``, ``state``, ``scoring``, ``prompts``, ``storage``, ``events``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "sale_graph"

LAYERS: list[tuple[str, ...]] = [  # bottom first
    ("errors", "state", "scoring", "prompts", "storage", "events"),
    ("llm", "memory", "tools", "embedded", "pool", "weights", "conversation"),
    ("context", "services"),
    ("nodes", "executor", "jury"),
    ("graph",),
]
APP = len(LAYERS)

# The model-call stack imports only these at run time (and the pool's AgentSpec for type hints).
LLM_MAY_IMPORT = ("sale_graph.llm", "sale_graph.errors", "sale_graph.state")
LLM_MAY_IMPORT_FOR_TYPES = ("sale_graph.pool",)


def _sources() -> dict[str, Path]:
    """Module name -> file, for sale_graph/ (without the tools link) and tools/ as sale_graph.tools."""
    found: dict[str, Path] = {}
    for base, prefix in ((ROOT / PACKAGE, (PACKAGE,)), (ROOT / "tools", (PACKAGE, "tools"))):
        for path in base.rglob("*.py"):
            rel = path.relative_to(base).with_suffix("").parts
            if base.name == PACKAGE and rel[0] == "tools":
                continue  # the link to tools/, read once below
            parts = prefix + (rel[:-1] if rel[-1] == "__init__" else rel)
            found[".".join(parts)] = path
    return found


SOURCES = _sources()


class Import(NamedTuple):
    """One import of a sale_graph module, and whether it is for type checkers only (``if TYPE_CHECKING:``)."""

    target: str
    line: int
    type_only: bool


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, module: str) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names)
        return
    if node.level:  # relative: resolve against the importing module's package
        base = module.split(".")
        is_package = SOURCES[module].name == "__init__.py"
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        name = ".".join(base + ([node.module] if node.module else []))
    else:
        name = node.module or ""
    yield name
    for alias in node.names:  # `from package import submodule`
        if f"{name}.{alias.name}" in SOURCES:
            yield f"{name}.{alias.name}"


def imports_of(module: str) -> list[Import]:
    """Every sale_graph import in ``module``, at its top or inside functions."""
    tree = ast.parse(SOURCES[module].read_text(encoding="utf-8"))
    found: list[Import] = []

    def walk(nodes: list[ast.AST], type_only: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(node, module):
                    if target == PACKAGE or target.startswith(PACKAGE + "."):
                        found.append(Import(target, node.lineno, type_only))
            elif isinstance(node, ast.If):
                checking = _is_type_checking(node)
                walk(list(node.body), type_only or checking)
                walk(list(node.orelse), type_only)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):  # def, class, with, try, except
                    children = getattr(node, field, None)
                    if isinstance(children, list):
                        walk([c for c in children if isinstance(c, ast.stmt | ast.ExceptHandler)], type_only)

    walk(list(tree.body), False)
    return found


def layer_of(module: str) -> int:
    """The layer a sale_graph module belongs to (the app layer when unlisted)."""
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else ""
    for rank, names in enumerate(LAYERS):
        if head in names:
            return rank
    return APP


def test_the_sources_are_found() -> None:
    assert {"sale_graph.graph", "sale_graph.llm.call", "sale_graph.nodes.bid", "sale_graph.tools.defaults"} <= set(SOURCES)


def test_no_module_imports_from_a_layer_above_it() -> None:
    upward = [
        f"{module} (layer {layer_of(module)}) imports {imp.target} (layer {layer_of(imp.target)}) at line {imp.line}"
        for module in sorted(SOURCES)
        for imp in imports_of(module)
        if layer_of(imp.target) > layer_of(module)
    ]
    assert upward == []


def test_the_model_call_stack_imports_nothing_above_it() -> None:
    wrong = []
    for module in sorted(m for m in SOURCES if m == "sale_graph.llm" or m.startswith("sale_graph.llm.")):
        for imp in imports_of(module):
            allowed = LLM_MAY_IMPORT + (LLM_MAY_IMPORT_FOR_TYPES if imp.type_only else ())
            if not any(imp.target == a or imp.target.startswith(a + ".") for a in allowed):
                wrong.append(f"{module}:{imp.line} imports {imp.target}")
    assert wrong == []


def _import_graph() -> dict[str, set[str]]:
    """What each module imports at run time, with the packages whose ``__init__`` that runs.

    An import inside a function counts too: it hides a circle, it does not remove it.
    Imports for type checkers only (``if TYPE_CHECKING:``) do not.
    """
    graph: dict[str, set[str]] = {}
    for module in SOURCES:
        own_packages = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        edges: set[str] = set()
        for imp in imports_of(module):
            if imp.type_only:
                continue
            parts = imp.target.split(".")
            for i in range(2, len(parts) + 1):  # importing a.b.c runs a.b's __init__ first
                name = ".".join(parts[:i])
                if name in SOURCES and name != module and name not in own_packages:
                    edges.add(name)
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle() -> None:
    """No circle through the library's modules, the bench's included."""
    assert _cycles(_import_graph()) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_package_root_holds_at_most_15_modules() -> None:
    root_modules = sorted(p.name for p in (ROOT / PACKAGE).glob("*.py"))
    assert len(root_modules) <= 15, root_modules
