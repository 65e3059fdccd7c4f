"""The layers, from the imports themselves: model -> plan -> agent -> platform -> front ends (DESIGN.md).

Every import counts, also those inside functions and under TYPE_CHECKING: they are how a reader
follows the code."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent / "distem"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> nx.DiGraph:
    """distem's modules, an edge from each to each distem module it imports."""
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            graph.add_edges_from((name, t) for t in targets if t in files and t != name)
    return graph


def imports_of(graph: nx.DiGraph, package: str) -> set[str]:
    return {t for s, t in graph.edges if s == package or s.startswith(package + ".")}


def test_the_agent_imports_nothing_else_of_distem():
    """It is sent to the pnodes as source: only its own modules (wire.py is a link into it)."""
    outside = {t for t in imports_of(import_graph(), "distem.agent") if not t.startswith("distem.agent")}
    assert outside == set()


@pytest.mark.parametrize("package", ["distem.model", "distem.plan", "distem.wire"])
def test_model_plan_and_wire_import_neither_agent_nor_platform_nor_front_ends(package):
    above = ("distem.agent", "distem.platform", "distem.frontends")
    assert {t for t in imports_of(import_graph(), package) if t.startswith(above)} == set()


@pytest.mark.parametrize("package", ["distem.agent", "distem.model", "distem.plan", "distem.platform"])
def test_no_import_cycle_inside(package):
    graph = import_graph()
    inside = graph.subgraph(n for n in graph if n.startswith(package + ".") or n == package)
    cycles = [c for c in nx.simple_cycles(inside) if len(c) > 1]
    assert cycles == [], cycles[:3]
