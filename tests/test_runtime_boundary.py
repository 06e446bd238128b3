"""The runtime is a library: ``switchyard/`` never imports the graph it serves or the demo."""

from __future__ import annotations

import ast
from pathlib import Path

import switchyard

RUNTIME = Path(switchyard.__file__).parent
GRAPH_AND_DEMO = ("schema", "resolvers", "upstreams", "services", "protos")


def imported_modules(source: Path) -> list[tuple[int, str]]:
    """Every module an ``import`` or ``from ... import`` statement names, with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_no_runtime_module_imports_the_graph_or_the_demo() -> None:
    offending = [
        f"{path.relative_to(RUNTIME.parent)}:{line}: {module}"
        for path in sorted(RUNTIME.rglob("*.py"))
        for line, module in imported_modules(path)
        if module.split(".")[0] in GRAPH_AND_DEMO
    ]
    assert offending == []


def test_the_walker_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "sample.py"
    module.write_text("def f():\n    from schema import graph\n    import services.launcher\n")
    assert imported_modules(module) == [(2, "schema"), (3, "services.launcher")]
