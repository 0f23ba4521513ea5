"""The package's layers, written down once: every `ecgcl` import (module level or inside a function) runs
downwards or within its own floor, no modules import each other in a circle (inside one floor either), the rooms
(sub-packages and top-level modules) import each other without cycles, and nothing below the package face
(`ecgcl/__init__.py`) imports it. The import graph is read from the source with `ast`, so nothing is imported to
check it."""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"ecgcl": REPO / "core", "ecgcl.plugins": REPO / "plugins", "ecgcl.cli": REPO / "cli"}

# Floors from the top: a module may import its own floor and the ones below, never one above. A prefix names a
# module and everything under it, except the package face, `ecgcl` itself: only `ecgcl/__init__.py`.
FACE = "ecgcl"
LAYERS = (
    ("cli", ("ecgcl.cli",)),
    ("package face", (FACE,)),
    ("python api", ("ecgcl.api",)),
    ("workflows", ("ecgcl.protocol", "ecgcl.robustness", "ecgcl.tuning")),
    ("training and components", ("ecgcl.engine", "ecgcl.plugins")),
    ("data", ("ecgcl.data",)),
    ("runtime", ("ecgcl.compose", "ecgcl.contracts", "ecgcl.manager", "ecgcl.registry", "ecgcl.context",
                 "ecgcl.tasks", "ecgcl.distributed", "ecgcl.locks")),
    ("declarations", ("ecgcl.interfaces", "ecgcl.config", "ecgcl.methods", "ecgcl.split_spec", "ecgcl.metrics")),
    ("leaves", ("ecgcl.errors", "ecgcl.hookspecs", "ecgcl.files", "ecgcl.reporting", "ecgcl.version")),
)


def _modules() -> dict[str, Path]:
    modules = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([package, *parts])
            if name.startswith("ecgcl.plugins") and package == "ecgcl" or "sample" in parts:
                continue
            modules[name] = path
    return modules


def _imports(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "ecgcl"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] == "ecgcl":
                found |= {f"{base}.{a.name}" for a in node.names} | {base}
    return found


def _floor(name: str) -> int:
    """The floor of a module: the most specific prefix listed in LAYERS (0 = top)."""
    best, floor = -1, None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or prefix != FACE and name.startswith(prefix + ".")) and len(prefix) > best:
                best, floor = len(prefix), index
    return floor


def _room(name: str) -> str:
    """A sub-package or top-level module of the layout (`ecgcl.engine`, `ecgcl.config`, `ecgcl.plugins.encoders`)."""
    parts = name.split(".")
    depth = 3 if parts[:2] in (["ecgcl", "plugins"], ["ecgcl", "cli"]) else 2
    return ".".join(parts[:depth])


MODULES = _modules()


def _edges():
    for name, path in sorted(MODULES.items()):
        for target in sorted(_imports(name, path)):
            while target not in MODULES and "." in target:
                target = target.rpartition(".")[0]  # `from ecgcl.x import name`: the module is ecgcl.x
            if target in MODULES and target != name:
                yield name, target


def test_every_module_has_a_floor():
    assert [name for name in MODULES if _floor(name) is None] == []


def test_no_import_runs_upwards():
    upward = [f"{a} (floor {LAYERS[_floor(a)][0]}) imports {b} (floor {LAYERS[_floor(b)][0]})"
              for a, b in _edges() if _floor(b) < _floor(a)]
    assert upward == []


def _circles(graph: dict[str, set[str]]) -> list[str]:
    """One circle (`a -> b -> a`) through each strongly connected group of `graph` (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1 or node in graph.get(node, ()):
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    circles = []
    for group in groups:  # the shortest way from the group's first module back to it, through the group
        start, members = group[0], set(group)
        paths, frontier = {start: [start]}, deque([start])
        while frontier:
            node = frontier.popleft()
            if start in graph.get(node, ()):
                circles.append(paths[node] + [start])
                break
            for nxt in sorted(graph.get(node, set()) & members - paths.keys()):
                paths[nxt] = paths[node] + [nxt]
                frontier.append(nxt)
    return [" -> ".join(c) for c in circles]


def test_modules_import_each_other_without_circles():
    """Module by module, function-level imports included: two modules of one floor that need each other share
    something that belongs in a third module both import."""
    graph: dict[str, set[str]] = {}
    for a, b in _edges():
        graph.setdefault(a, set()).add(b)
    assert _circles(graph) == []


def test_nothing_below_the_face_imports_it():
    """`from ecgcl import x` runs through the package face; below it, import the module that holds x."""
    assert [a for a, b in _edges() if b == FACE and _floor(a) > _floor(FACE)] == []


def test_the_circle_check_sees_a_circle_of_function_level_imports():
    graph = {"ecgcl.engine.a": {"ecgcl.engine.b"}, "ecgcl.engine.b": {"ecgcl.engine.c"},
             "ecgcl.engine.c": {"ecgcl.engine.a", "ecgcl.errors"}, "ecgcl.errors": set()}
    assert _circles(graph) == ["ecgcl.engine.a -> ecgcl.engine.b -> ecgcl.engine.c -> ecgcl.engine.a"]


def test_rooms_import_each_other_without_cycles():
    graph: dict[str, set[str]] = {}
    for a, b in _edges():
        if _room(a) != _room(b) and _room(b) != "ecgcl":
            graph.setdefault(_room(a), set()).add(_room(b))
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]) if nxt in trail else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


@pytest.mark.parametrize("module", ["ecgcl.cli.ingest", "ecgcl.cli.main"])
def test_the_walk_sees_function_level_imports(module):
    """The checker reads imports inside functions too (most of core imports lazily)."""
    assert any(a == module for a, _ in _edges())


def test_component_kinds_have_one_home():
    from ecgcl import hookspecs
    from ecgcl.registry import BUILTIN_MODULES, KIND_HOOKS

    specs = {n for n in dir(hookspecs) if n.startswith("register_") and callable(getattr(hookspecs, n))}
    assert set(KIND_HOOKS.values()) <= specs
    assert all(f"ecgcl.plugins.{(REPO / 'plugins' / m.rpartition('.')[2]).name}" == m
               and (REPO / "plugins" / m.rpartition(".")[2] / "__init__.py").is_file() for m in BUILTIN_MODULES)
