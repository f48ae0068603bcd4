"""The package's shape, checked: no import cycles, imports point down the layers only, small modules, a light
`import radcnn`. Imports inside functions count (they are how cycles hide); imports under TYPE_CHECKING do not
(they never run)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "radcnn"

# Lowest first. A module may import its own package and anything in a lower layer, never a higher one.
LAYERS = [
    {"errors", "config", "io", "lazy", "registry", "outputs", "evaluation"},
    {"encryption"},
    {"data"},
    {"phantom", "models"},
    {"runs"},
    {"training"},
    {"explain"},
    {"reporting", "privacy"},
    {"serve", "federated", "cross_validation", "demo"},
    {"cli"},
]
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every radcnn module `path` imports, at module level or inside functions, outside TYPE_CHECKING blocks."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("radcnn"):
                candidates = [child.module] + [f"{child.module}.{alias.name}" for alias in child.names]
                found.update(filter(None, (_resolve(c, modules) for c in candidates)))
            elif isinstance(child, ast.Import):
                found.update(
                    filter(None, (_resolve(a.name, modules) for a in child.names if a.name.startswith("radcnn")))
                )
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name, "radcnn"} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def _top(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_package_is_in_a_layer():
    packages = {_top(m) for m in _graph() if m != "radcnn"}
    assert packages <= set(LEVEL), f"add {sorted(packages - set(LEVEL))} to LAYERS"


def test_imports_point_down_the_layers_only():
    upward = defaultdict(list)
    for module, imported in _graph().items():
        if module == "radcnn":
            continue
        for target in imported:
            if LEVEL[_top(target)] > LEVEL[_top(module)]:
                upward[module].append(target)
    assert dict(upward) == {}


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(SRC)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_import_radcnn_stays_light():
    code = "import sys, radcnn; heavy = [m for m in ('torch', 'lightning', 'monai', 'pydicom') if m in sys.modules]; print(heavy)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
