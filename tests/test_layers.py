"""The package's layers point one way: every import, at module level or inside a function,
goes to the same layer or one below, and no group of modules imports itself round."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first; a module belongs to the first layer with a prefix of its name.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("transgan", "transgan.errors", "transgan.lazy", "transgan.progress",
              "transgan.counts")),
    ("nn", ("transgan.nn",)),
    ("data", ("transgan.data",)),
    ("sampling", ("transgan.sampling",)),
    ("models", ("transgan.models",)),
    ("artifacts", ("transgan.artifacts",)),
    ("metrics", ("transgan.metrics",)),
    ("train", ("transgan.train",)),
    ("applications", ("transgan.experiments", "transgan.bench", "transgan.bench_table",
                      "transgan.serve", "transgan.report", "transgan.sharing",
                      "transgan.memory_table", "transgan.slurm")),
    ("cli", ("transgan.cli",)),
]


def modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the transgan modules it imports anywhere in its body (functions included)."""
    known = modules()

    def owner(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            for target in targets:
                found = owner(target) if target.startswith("transgan") else None
                if found and found != name:
                    graph[name].add(found)
    return graph


def layer_of(name: str) -> int:
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            inside = (name == prefix or name.startswith(prefix + ".")) and prefix != "transgan"
            if inside and (best is None or len(prefix) > best[1]):
                best = (rank, len(prefix))
    if best is None:
        assert name in LAYERS[0][1], f"{name} is in no layer"
        return 0
    return best[0]


def test_every_import_points_down_or_sideways() -> None:
    upward = [f"{source} ({LAYERS[layer_of(source)][0]}) imports {target} "
              f"({LAYERS[layer_of(target)][0]})"
              for source, targets in import_graph().items() for target in targets
              if layer_of(target) > layer_of(source)]
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycle() -> None:
    graph = import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in modules():
        if node not in index:
            visit(node)
    assert not cycles, cycles


def test_the_scan_sees_imports_inside_functions() -> None:
    # cli/command_line.py imports transgan.train.distributed only inside main().
    assert "transgan.train.distributed" in import_graph()["transgan.cli.command_line"]
