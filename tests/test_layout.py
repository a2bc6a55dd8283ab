"""The package layout keeps its promises: imports point one way, modules and functions stay readable.

The generic parts (the concepts, ``oneshot/``, ``pipeline/``, ``compare/``, ``rankcorr/``,
``report/``, ``nn/``) must work for any space and task, so they import nothing from the
plugins (``text/``, ``glue/``, ``spaces/``), not even lazily inside a function. Plugins are
reached through the registries by name (strings), which is the point of having them.

No two modules of the package (``spaces/`` and ``strategies/`` included, as the
``nasplug.spaces`` / ``nasplug.strategies`` they are installed as) import each other, directly
or around a longer loop, counting imports inside functions: a function-local import hides a
cycle, it does not break it. Imports under ``if TYPE_CHECKING:`` are not counted (they never
run). Importing ``a.b.c`` runs the packages ``a`` and ``a.b`` first, so it counts as an import
of each of them too (but a module's own enclosing packages, which have run before it).
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
NOT_CORE = {"cli.py", "__main__.py"}
MAX_LINES = 400
MAX_FUNCTION_LINES = 80
#: Source folder -> the package it is installed as (pyproject.toml's package-dir).
INSTALLED_AS = {"nasplug": "nasplug", "spaces": "nasplug.spaces", "strategies": "nasplug.strategies"}
SOURCES = sorted(p for d in INSTALLED_AS for p in (REPO / d).rglob("*.py"))


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


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_is_longer_than_a_reader_holds(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(REPO)} has {lines} lines; split it by role"


# --------------------------------------------------------------------------- function length
def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """``(qualified name, lines)`` of every function in ``path`` (methods and nested functions
    too) longer than ``limit`` lines, counted from its ``def`` line through its last line."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef) and child.end_lineno - child.lineno + 1 > limit:
                    found.append((name, child.end_lineno - child.lineno + 1))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text(), filename=str(path)), "")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_function_is_longer_than_a_reader_holds(path: Path) -> None:
    long = long_functions(path)
    assert not long, f"{path.relative_to(REPO)}: {long} run past {MAX_FUNCTION_LINES} lines; split them by step"


def test_the_function_check_sees_a_long_method(tmp_path: Path) -> None:
    """A function of 80 lines passes, a method of 81 (its decorator not counted) fails (a test of the test)."""
    body = "".join(f"    x{i} = {i}\n" for i in range(79))
    module = tmp_path / "m.py"
    module.write_text(f"def fits():\n{body}\n\nclass C:\n    @staticmethod\n    def long():\n"
                      + "".join(f"    {line}" for line in body.splitlines(keepends=True)) + "        return 0\n")
    assert long_functions(module) == [("C.long", 81)]


# --------------------------------------------------------------------------- import cycles
def package_modules(roots: dict[Path, str]) -> dict[str, Path]:
    """Dotted module name -> file, for every ``*.py`` under each source folder (its package name)."""
    modules = {}
    for folder, package in roots.items():
        for path in folder.rglob("*.py"):
            parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
            modules[".".join([package, *parts])] = path
    return modules


def _type_checking_only(tree: ast.AST) -> set[int]:
    """The ids of the nodes under ``if TYPE_CHECKING:`` (imports there never run)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        test = node.test if isinstance(node, ast.If) else None
        if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING" or (
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skipped


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The dotted names an import statement asks for (``from a import b``: ``a.b``, which is a
    module or a name in ``a``); relative imports resolved against ``module``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}".rstrip(".")
    return [f"{base}.{alias.name}" for alias in node.names]


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """Module -> {module of the package it imports (anywhere but under TYPE_CHECKING): line}."""
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skipped, edges = _type_checking_only(tree), {}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in skipped:
                continue
            for name in _imported(node, module, path.name == "__init__.py"):
                while name and name not in modules:  # `from a import name`: the module is `a`
                    name = name.rpartition(".")[0]
                if name and name != module:
                    edges.setdefault(name, node.lineno)
                parent = name.rpartition(".")[0]
                while parent:  # importing a.b.c runs a and a.b first (unless they enclose this module)
                    if parent in modules and parent != module and not module.startswith(parent + "."):
                        edges.setdefault(parent, node.lineno)
                    parent = parent.rpartition(".")[0]
        graph[module] = edges
    return graph


def import_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or around a loop (Tarjan's
    strongly connected components with more than one module), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, {}):
            if other not in index:
                connect(other)
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
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(cycles)


def _describe(cycles: list[list[str]], graph: dict[str, dict[str, int]]) -> str:
    return "; ".join(", ".join(f"{a} -> {b} (line {graph[a][b]})" for a in group for b in graph[a] if b in group)
                     for group in cycles)


def test_no_import_cycles_not_even_through_a_function_local_import() -> None:
    graph = import_graph(package_modules({REPO / folder: package for folder, package in INSTALLED_AS.items()}))
    assert len(graph) == len(SOURCES)
    cycles = import_cycles(graph)
    assert not cycles, f"import cycles: {_describe(cycles, graph)}"


def test_the_cycle_check_sees_a_cycle_through_a_function_local_import(tmp_path: Path) -> None:
    """A cycle closed by an import inside a function, or by importing a module whose package
    imports the importer, is found; one closed only under TYPE_CHECKING is not (a test of the test)."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {"__init__.py": "", "a.py": "import pkg.b\nfrom . import c\n",
             "b.py": "def f():\n    from pkg import a\n",
             "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import x\n",
             "sub/__init__.py": "from pkg.sub.d import y\n", "sub/d.py": "y = 1\n",
             "e.py": "from pkg.sub.d import y\n", "f.py": "def g():\n    import pkg.e\n"}
    for name, text in files.items():
        (pkg / name).write_text(text)
    graph = import_graph(package_modules({pkg: "pkg"}))
    assert import_cycles(graph) == [["pkg.a", "pkg.b"]]
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.d import y\nfrom pkg import f\n")  # sub -> f -> e -> sub
    assert import_cycles(import_graph(package_modules({pkg: "pkg"}))) == [
        ["pkg.a", "pkg.b"], ["pkg.e", "pkg.f", "pkg.sub"]]
