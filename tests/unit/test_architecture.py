"""Imports run one way: entry points -> the app factory -> resources -> plumbing ->
the store and register clients -> the store interface. No cycles.

The graph is built from the source itself (every module of the package as
pyproject.toml describes it: app.py, db.py, business_client.py and customers/),
so a new module is checked the moment it exists.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.served import ROOT

# Bottom to top. A module may import its own layer or the layers below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "the store interface and the field declaration",
        ("db", "customers.fields", "customers.field_rules", "customers.business_ids"),
    ),
    (
        "implementations: stores, the register client, AWS services",
        ("customers.stores", "customers.register", "business_client", "customers.aws.ssm"),
    ),
    ("request plumbing and settings", ("customers.web", "customers.config")),
    ("resources", ("customers",)),
    ("the app factory", ("app",)),
    (
        "entry points",
        ("customers.serving", "customers.aws.lambda_handler", "customers.aws.stream_handler"),
    ),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_modules() -> dict[str, Path]:
    paths = [ROOT / "app.py", ROOT / "db.py", ROOT / "business_client.py"]
    paths += sorted((ROOT / "customers").rglob("*.py"))
    return {_module_name(path): path for path in paths}


def _is_main_block(node: ast.AST) -> bool:
    """`if __name__ == "__main__":` is the entry point a script holds, not an import."""
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def _import_statements(
    path: Path, skip: Callable[[ast.AST], bool]
) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every absolute import statement in `path`, inside functions too, outside blocks
    that `skip` accepts."""
    pending: list[ast.AST] = [ast.parse(path.read_text())]
    while pending:
        node = pending.pop()
        if skip(node):
            continue
        if isinstance(node, ast.Import) or (
            isinstance(node, ast.ImportFrom) and node.module and node.level == 0
        ):
            yield node
        pending.extend(ast.iter_child_nodes(node))


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules `path` imports, at module level or inside functions."""
    found: set[str] = set()
    for node in _import_statements(path, skip=_is_main_block):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in modules}


def _graph() -> dict[str, set[str]]:
    modules = _project_modules()
    return {name: _imports(path, set(modules)) - {name} for name, path in modules.items()}


def _layer(module: str) -> int:
    """The most specific prefix decides: customers.web is plumbing, customers.routes a resource."""
    best, best_length = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    assert best >= 0, f"{module} is in no layer"
    return best


def test_the_graph_finds_the_modules_and_their_imports() -> None:
    graph = _graph()
    assert {"app", "db", "customers.routes", "customers.web.problems"} <= set(graph)
    assert "customers.routes" in graph["app"]
    assert "db" in graph["customers.stores.sqlite"]


def test_every_import_goes_down_the_layers() -> None:
    upward = [
        f"{module} ({LAYERS[_layer(module)][0]}) imports {imported} ({LAYERS[_layer(imported)][0]})"
        for module, imports in _graph().items()
        for imported in imports
        if _layer(imported) > _layer(module)
    ]
    assert upward == []


def test_there_are_no_import_cycles() -> None:
    graph = _graph()
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str], on_path: set[str], done: set[str]) -> None:
        for imported in sorted(graph[module]):
            if imported in on_path:
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in done:
                visit(imported, [*path, imported], on_path | {imported}, done)
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module], {module}, done)
    assert cycles == []


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    """The check itself: a store that imported a resource would be reported."""
    probe = tmp_path / "probe.py"
    probe.write_text("from customers.routes import bp\n")
    assert _imports(probe, {"customers.routes"}) == {"customers.routes"}
    assert _layer("customers.routes") > _layer("customers.stores.sqlite")


# Trees of other tools' files, not the project's own.
_NOT_OURS = {
    ".venv",
    ".venv-sam",
    "node_modules",
    "build",
    ".aws-sam",
    ".runtime-venv",
    ".openapi-venv",
    ".ijson-lib",
}


def _is_type_checking_block(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:` imports exist for the type checker only (such as `_typeshed`)."""
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )


def _imported_names(path: Path) -> list[tuple[int, str]]:
    """The modules `path` imports for running, not only for type checking: (line, module)."""
    found: list[tuple[int, str]] = []
    for node in _import_statements(path, skip=_is_type_checking_block):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif node.module:
            found.append((node.lineno, node.module))
    return found


def _missing_imports(paths: list[Path]) -> list[str]:
    missing = []
    for path in paths:
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        for line, module in _imported_names(path):
            try:
                found = importlib.util.find_spec(module) is not None
            except ModuleNotFoundError:
                found = False
            if not found:
                missing.append(f"{shown}:{line} imports {module}")
    return missing


def test_every_import_names_a_module_that_exists() -> None:
    """In the service, the tests, bench/ and e2e/ alike: an import inside a function
    (a benchmark's optional step, say) fails only when that step runs, so a module
    renamed or moved would otherwise go unnoticed until someone runs it."""
    paths = [
        path
        for path in sorted(ROOT.rglob("*.py"))
        if not _NOT_OURS & set(path.relative_to(ROOT).parts)
    ]
    assert {
        ROOT / "app.py",
        ROOT / "bench" / "cold_start.py",
        ROOT / "e2e" / "readme_walk.py",
    } <= set(paths)
    assert _missing_imports(paths) == []


def test_a_missing_module_is_caught(tmp_path: Path) -> None:
    """The check itself: an import of a module that no longer exists is reported."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from _typeshed import StrPath\n"
        "def step():\n    from dynamo_store import DynamoStore\n"
    )
    assert sorted(name for _, name in _imported_names(probe)) == ["dynamo_store", "typing"]
    assert _missing_imports([probe]) == [f"{probe}:5 imports dynamo_store"]
