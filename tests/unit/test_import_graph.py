"""The layout's rules, checked on the source: no import cycle, no oversized module.

Every `import` counts, at module level or inside a function (a lazy import that closes
a cycle is still a cycle: the factory ↔ implementation cycles this test was written
against were lazy). A package's `__init__` importing its own submodules is not a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("services", "schemas", "chaos")
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in known else base)
        for t in targets:
            if t in known and t != name:
                out.add(t)
    if is_pkg:  # a package importing its own children is how re-exports work
        out = {t for t in out if not t.startswith(name + ".")}
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(name, path, known) for name, path in mods.items()}


def test_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_graph_sees_lazy_imports() -> None:
    graph = _graph()
    # The store factory is the one place choosing an implementation.
    assert "services.common.stores.idempotency_sqlite" in graph["services.common.stores.factory"]
    assert "services.common.stores.factory" not in graph["services.common.stores.idempotency"]


def test_services_and_schemas_never_import_the_chaos_run() -> None:
    graph = _graph()
    uses = {
        m: sorted(t for t in deps if t.split(".")[0] == "chaos")
        for m, deps in graph.items()
        if m.split(".")[0] != "chaos"
    }
    assert {m: d for m, d in uses.items() if d} == {}


def test_no_import_cycle_in_services_or_schemas() -> None:
    cycles = _cycles(_graph())
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_module_over_the_line_limit(pkg: str) -> None:
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines())
        for p in (ROOT / pkg).rglob("*.py")
    }
    long = {path: n for path, n in sizes.items() if n > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_common_holds_packages_and_few_top_level_modules() -> None:
    common = ROOT / "services" / "common"
    top = sorted(p.name for p in common.glob("*.py"))
    assert len(top) <= 8, top
    assert not [n for n in top if n.startswith("cli")], top
