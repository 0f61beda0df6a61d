"""The package's import graph: no cycle, no library module importing the command line, and
every function-level import of a package module says why it is not at the top.

The graph is read from the source with ``ast`` (nothing is imported): module-level and
function-level imports both count, ``if TYPE_CHECKING:`` blocks do not (they never run), and
importing ``a.b.c`` also imports the packages ``a.b`` above it.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "pgolf_audit"
# The command-line entry and the commands that only the command line loads.
CLI = "pgolf_audit.cli"
# Modules that are command-line programs of their own or code written into a child process,
# not library code: their imports are not part of the package's graph.
NOT_LIBRARY = {"pgolf_audit.rerun.network_guard", "pgolf_audit.rerun.flash_attn_shim", "pgolf_audit.__main__"}


def package_dirs() -> dict[str, Path]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {name: ROOT / path for name, path in config["tool"]["setuptools"]["package-dir"].items()}


def modules() -> dict[str, Path]:
    dirs = package_dirs()
    out: dict[str, Path] = {}
    for package, directory in dirs.items():
        for path in directory.glob("*.py"):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            out[name] = path
    return {name: path for name, path in out.items() if name not in NOT_LIBRARY}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    return skip


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".")
        if not is_package:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        stem = ".".join(base + ([node.module] if node.module else []))
    else:
        stem = node.module or ""
    return [stem] + [f"{stem}.{alias.name}" for alias in node.names]


def import_graph() -> tuple[dict[str, set[str]], list[tuple[str, int, str, bool]]]:
    """module -> the package modules it imports; and every function-level import of a package
    module as (module, line, statement, has a stated reason)."""
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    function_level: list[tuple[str, int, str, bool]] = []
    for name, path in known.items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text)
        skip = _type_checking_nodes(tree)
        inside_functions = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                            for n in ast.walk(f)}
        for node in ast.walk(tree):
            if id(node) in skip or not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            found = False
            for target in _targets(name, path.name == "__init__.py", node):
                parts = target.split(".")
                for k in range(2, len(parts) + 1):
                    prefix = ".".join(parts[:k])
                    implicit = k < len(parts)  # a package imported on the way to its module
                    if prefix in known and prefix != name and not (implicit and name.startswith(prefix + ".")):
                        edges[name].add(prefix)
                        found = True
            if found and id(node) in inside_functions:
                here = lines[node.lineno - 1]
                above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
                reason = "#" in here or above.startswith("#")
                function_level.append((name, node.lineno, ast.unparse(node), reason))
    return edges, function_level


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_walk_sees_the_package():
    edges, _ = import_graph()
    assert {"pgolf_audit.audit", "pgolf_audit.engine.loader", "pgolf_audit.rules.pg900_rule_crashed"} <= set(edges)
    assert "pgolf_audit.runner" in edges["pgolf_audit.audit"]


def test_a_cycle_is_detected():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    edges, _ = import_graph()
    assert cycles(edges) == []


def test_no_library_module_imports_the_command_line():
    edges, _ = import_graph()
    assert [name for name, targets in edges.items() if CLI in targets] == []


def test_function_level_imports_of_the_package_state_a_reason():
    _, function_level = import_graph()
    silent = [f"{name}:{line}: {stmt}" for name, line, stmt, reason in function_level if not reason]
    assert silent == [], "say why the import is not at the top of the module (a comment on or above it)"
