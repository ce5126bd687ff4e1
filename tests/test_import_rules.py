"""The house rules of core/ (docs/architecture.md), read from the source with ast, imports inside
functions included: no import loops, no wing imports a higher wing, and core never imports the app
(streamlit, ui, pages) or the tests.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

from core.paths import REPO_ROOT

# Each wing's floor: a module may import its own wing or any wing on a lower floor.
FLOORS = {
    "core": 0,  # the package's own __init__
    "labels": 0,
    "paths": 0,
    "faces": 1,
    "serving": 1,
    "data": 2,
    "models": 3,
    "explain": 4,
    "pipeline": 5,
    "batch": 6,
    "evaluation": 6,
    "video": 6,
    "training": 7,
    "jobs": 8,
    "scale": 9,  # issue 23: the pipeline and training on Ray
    "cli": 10,
    "__main__": 11,
}
FORBIDDEN = ("streamlit", "streamlit_webrtc", "ui", "pages", "tests")


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str, modules: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """Every module `path` imports, anywhere in its body (relative imports resolved). `from pkg import
    mod` counts as importing pkg.mod alone when that is one of `modules`, else as importing pkg."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + [base]).strip(".")
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """core's modules and, for each, the core modules it imports."""
    modules = {module_name(path, root): path for path in root.rglob("*.py")}
    names = frozenset(modules)
    return {
        name: {target for target in imports_of(path, name, names) if target in modules and target != name}
        for name, path in modules.items()
    }


def wing(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def import_problems(root: Path) -> list[str]:
    """Every broken rule under `root` (a copy of core/), one line each."""
    problems = []
    for name, path in sorted((module_name(p, root), p) for p in root.rglob("*.py")):
        for target in sorted(imports_of(path, name)):
            if target.split(".")[0] in FORBIDDEN:
                problems.append(f"{name} imports {target}: core never imports the app or the tests")
    graph = import_graph(root)
    for name, targets in sorted(graph.items()):
        for target in sorted(targets):
            if wing(target) == wing(name) or name == "core" or target == "core":
                continue
            if wing(name) not in FLOORS or wing(target) not in FLOORS:
                problems.append(f"{name} or {target} is in no wing of FLOORS (docs/architecture.md)")
            elif FLOORS[wing(target)] >= FLOORS[wing(name)]:
                problems.append(
                    f"{name} imports {target}: {wing(target)} (floor {FLOORS[wing(target)]}) is not below "
                    f"{wing(name)} (floor {FLOORS[wing(name)]})"
                )
    problems += [f"import loop: {' -> '.join(loop)}" for loop in loops(graph)]
    return problems


def test_core_keeps_the_house_rules() -> None:
    assert import_problems(REPO_ROOT / "core") == []


def copy_of_core(tmp_path: Path) -> Path:
    root = tmp_path / "core"
    shutil.copytree(REPO_ROOT / "core", root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_a_core_module_importing_streamlit_breaks_the_rules(tmp_path: Path) -> None:
    root = copy_of_core(tmp_path)
    module = root / "faces" / "quality.py"
    module.write_text(module.read_text() + "\n\ndef page():\n    import streamlit as st\n")
    assert import_problems(root) == [
        "core.faces.quality imports streamlit: core never imports the app or the tests"
    ]


def test_an_upward_import_and_a_loop_break_the_rules(tmp_path: Path) -> None:
    root = copy_of_core(tmp_path)
    registry = root / "models" / "registry.py"
    registry.write_text(
        registry.read_text() + "\n\ndef average():\n    from core.models.ensemble import load_ensemble\n"
    )
    labels = root / "labels.py"
    labels.write_text(labels.read_text() + "\nfrom core.pipeline import analyze\n")
    problems = import_problems(root)
    assert any(p.startswith("core.labels imports core.pipeline") for p in problems), problems
    assert any(p.startswith("import loop:") and "core.models.registry" in p for p in problems), problems
