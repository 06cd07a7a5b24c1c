"""The bench's layout: sub-packages by concept whose imports run one way, no circle, no clash with the public API."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import sale_graph

BENCH = Path(__file__).resolve().parents[3] / "sale_graph" / "bench"

# What each sub-package may import from the others (lazy imports inside functions included).
ALLOWED = {
    "tasks": set(),
    "market": set(),
    "runs": {"market", "tasks"},
    "routers": {"market"},
    "fit": {"market", "routers"},
    "report": {"fit", "market", "routers", "tasks"},
    "synthetic": {"fit", "market", "routers", "tasks"},
    "cli": {"fit", "market", "report", "routers", "runs", "synthetic", "tasks"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(BENCH.rglob("*.py")):
        parts = path.relative_to(BENCH.parent.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path) -> set[str]:
    """Every ``sale_graph.bench`` module that ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sale_graph.bench"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("sale_graph.bench")}
    return found


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[2] in ALLOWED else "<root>"


def test_every_module_lives_in_a_documented_sub_package() -> None:
    modules = _modules()
    loose = [m for m, p in modules.items() if p.parent == BENCH and p.name not in ("__init__.py", "__main__.py")]
    assert loose == [], "bench modules belong in a sub-package"
    for sub in ALLOWED:
        init = BENCH / sub / "__init__.py"
        assert init.is_file(), f"bench/{sub}/ has no __init__.py"
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), f"bench/{sub}/__init__.py says nothing"
    assert {p.parent.name for p in BENCH.glob("*/__init__.py")} == set(ALLOWED)


def test_sub_packages_import_downwards_only() -> None:
    wrong = []
    for module, path in _modules().items():
        here = _package(module)
        if here == "<root>":
            continue
        for target in _imports(path):
            there = _package(target)
            if there != here and there not in ALLOWED[here]:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_no_import_circle() -> None:
    modules = _modules()
    graph = {m: {t for t in _imports(p) if t in modules and t != m} for m, p in modules.items()}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                raise AssertionError("import circle: " + " -> ".join([*stack[stack.index(t):], t]))
            if t not in state:
                visit(t, [*stack, t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_no_bench_name_reads_like_a_public_name() -> None:
    def norm(name: str) -> str:
        return re.sub(r"_", "", name).lower()

    public = {norm(n): n for n in sale_graph.__all__}
    clashes = []
    for module, path in _modules().items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and not node.name.startswith("_") and norm(node.name) in public:
                clashes.append(f"{module}.{node.name} vs sale_graph.{public[norm(node.name)]}")
    assert clashes == []
