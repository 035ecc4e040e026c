"""Reading the code's imports (AST) and the allowed-dependency table in ``docs/architecture.md``.

The architecture tests check the first against the second, and find cycles between modules. Both functions take the
tree's root, so a test can plant a forbidden import in a copy and see it reported.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("atna", "config", "cxr", "dashboard", "db", "dicom_node", "models", "worker")
SKIPPED = ("db/migrations/versions",)


@dataclass(frozen=True)
class Rule:
    may_import: frozenset[str]
    never_imports: frozenset[str]


@dataclass(frozen=True)
class Import:
    module: str
    """The importing module, dotted."""
    target: str
    """What it imports, dotted (a submodule when ``from package import submodule`` names one)."""
    line: int


def read_rules(architecture: Path) -> dict[str, Rule]:
    """The package table: ``| `pkg` | role | `a`, `b` | third, party |``, one row per package."""
    rules: dict[str, Rule] = {}
    row = re.compile(r"^\| `(?P<pkg>\w+)` \|[^|]*\| (?P<may>[^|]*) \| (?P<never>[^|]*) \|$")
    for line in architecture.read_text().splitlines():
        match = row.match(line.strip())
        if match is None or match["pkg"] not in PACKAGES:
            continue
        rules[match["pkg"]] = Rule(_names(match["may"]), _names(match["never"]))
    return rules


def _names(cell: str) -> frozenset[str]:
    return frozenset(n.strip(" `") for n in cell.split(",") if n.strip(" `—-"))


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files(root: Path) -> list[Path]:
    return sorted(
        p
        for package in PACKAGES
        for p in (root / package).rglob("*.py")
        if not any(str(p.relative_to(root)).startswith(s) for s in SKIPPED)
    )


def imports(root: Path) -> list[Import]:
    """Every import in our packages, at any depth (function-level imports count as much as module-level ones)."""
    modules = {module_name(root, p) for p in source_files(root)}
    found: list[Import] = []
    for path in source_files(root):
        name = module_name(root, path)
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found += [Import(name, alias.name, node.lineno) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(name, is_package, node)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.append(Import(name, sub if sub in modules else base, node.lineno))
    return found


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    anchor = parts if is_package else parts[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def violations(root: Path, rules: dict[str, Rule]) -> list[str]:
    """Each import a module's package may not make, as ``module:line imports target (rule)``."""
    problems = []
    for imp in imports(root):
        package, top = imp.module.split(".")[0], imp.target.split(".")[0]
        rule = rules.get(package)
        if rule is None:
            problems.append(f"{imp.module}: package {package} has no row in the architecture table")
        elif top in PACKAGES and top != package and top not in rule.may_import:
            problems.append(f"{imp.module}:{imp.line} imports {imp.target} ({package} may not import {top})")
        elif top in rule.never_imports:
            problems.append(f"{imp.module}:{imp.line} imports {imp.target} ({package} never imports {top})")
    return sorted(set(problems))


def cycles(root: Path) -> list[list[str]]:
    """Strongly connected groups of modules (each a cycle of imports), found with Tarjan's algorithm."""
    graph: dict[str, set[str]] = {module_name(root, p): set() for p in source_files(root)}
    for imp in imports(root):
        if imp.target in graph and imp.target != imp.module:
            graph[imp.module].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups
