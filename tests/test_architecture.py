"""Layers point one way: the core loads no messenger SDK, no adapter and nothing of the operator side; no cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "channels", "operators", "embedded_mongo")
# The composition root wires adapters and the operator side in; everything else in gateway/ is the core.
COMPOSITION_ROOT = {"gateway.app", "gateway.cli", "gateway.__main__"}
FORBIDDEN_IN_CORE = ("aiogram", "twilio", "channels.telegram", "channels.whatsapp", "channels.webwidget", "operators")


def modules() -> dict[str, Path]:
    """Every module of our packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Our modules that `name` imports (TYPE_CHECKING imports too)."""
    found = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            # `from . import x` imports the module x, not the package it is in.
            targets = ([module] if node.module else []) + [f"{module}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def test_the_core_imports_no_sdk_no_adapter_and_nothing_of_the_operator_side() -> None:
    core = sorted(m for m in modules() if m.startswith("gateway") and m not in COMPOSITION_ROOT)
    script = (
        "import importlib, sys\n"
        f"for name in {core!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {{'aiogram', 'twilio', 'operators'}} "
        f"or m.startswith({FORBIDDEN_IN_CORE!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", f"the core loaded {result.stdout.strip()}"


def test_no_module_imports_itself_through_others() -> None:
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    cycles = strongly_connected(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_embedded_engine_is_a_package_of_its_own() -> None:
    known = modules()
    engine = {name: imports(name, path, known) for name, path in known.items() if name.startswith("embedded_mongo")}
    outside = {
        f"{name} -> {dep}" for name, deps in engine.items() for dep in deps if not dep.startswith("embedded_mongo")
    }
    assert not outside, f"embedded_mongo imports the gateway: {sorted(outside)}"


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of two or more modules that import each other, directly or not (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups
