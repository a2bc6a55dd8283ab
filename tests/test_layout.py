"""The package layout keeps its promises: imports point one way, modules stay readable.

The generic parts (the concepts, ``oneshot/``, ``pipeline/``, ``compare/``, ``rankcorr/``,
``report/``, ``nn/``) must work for any space and task, so they import nothing from the
plugins (``text/``, ``glue/``, ``spaces/``), not even lazily inside a function. Plugins are
reached through the registries by name (strings), which is the point of having them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "nasplug"
PLUGINS = ("nasplug.text", "nasplug.glue", "nasplug.spaces")
GENERIC_FOLDERS = ("oneshot", "pipeline", "compare", "rankcorr", "report", "nn", "study")
#: Top-level modules that belong to a plugin or to the command line, not to the generic core.
NOT_CORE = {"cli.py", "testing.py", "__main__.py"}
MAX_LINES = 400


def generic_modules() -> list[Path]:
    core = [p for p in PACKAGE.glob("*.py") if p.name not in NOT_CORE]
    return sorted(core + [p for folder in GENERIC_FOLDERS for p in (PACKAGE / folder).rglob("*.py")])


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module an ``import`` / ``from ... import`` statement names, anywhere in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append((node.lineno, node.module))
            if node.module == "nasplug":  # from nasplug import text
                names += [(node.lineno, f"nasplug.{alias.name}") for alias in node.names]
    return names


@pytest.mark.parametrize("path", generic_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_generic_code_imports_no_plugin(path: Path) -> None:
    bad = [(line, name) for line, name in imported_modules(path)
           if any(name == plugin or name.startswith(plugin + ".") for plugin in PLUGINS)]
    assert not bad, f"{path.relative_to(REPO)} imports plugin code: {bad}"


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    """The import scan finds imports inside functions too (a test of the test)."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from nasplug.text.tasks import MLMTask\n    import nasplug.glue\n")
    assert [n for _, n in imported_modules(module)] == ["nasplug.text.tasks", "nasplug.glue"]


@pytest.mark.parametrize(
    "path",
    sorted(p for d in ("nasplug", "spaces", "strategies") for p in (REPO / d).rglob("*.py")),
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_no_module_is_longer_than_a_reader_holds(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(REPO)} has {lines} lines; split it by role"
