"""The layout's rules, read from the source: imports point one way, and nothing grows too big.

Every `import` counts, including those inside functions: an import deferred to call
time is still a dependency, and two modules that defer imports of each other are one
tangle. Migrations are generated and left out.
"""

import ast
import itertools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("subscriptions", "config")
MEASURED = (*PRODUCT, "bench", "docker", "tests")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 40

# A module in the first group never imports one in the second (tasks import services,
# views call services, services use models and mail; never the other way round).
FORBIDDEN = [
    ("subscriptions.services", "subscriptions.tasks"),
    ("subscriptions.services", "subscriptions.views"),
    ("subscriptions.services", "subscriptions.admin"),
    ("subscriptions.mail", "subscriptions.services"),
    ("subscriptions.mail", "subscriptions.tasks"),
    ("subscriptions.mail", "subscriptions.views"),
    ("subscriptions.models", "subscriptions.services"),
    ("subscriptions.models", "subscriptions.mail"),
    ("subscriptions.models", "subscriptions.views"),
    ("subscriptions.models", "subscriptions.tasks"),
    ("subscriptions.tasks", "subscriptions.views"),
    # What services build on sits below them.
    *(
        (lower, "subscriptions.services")
        for lower in (
            "subscriptions.audit",
            "subscriptions.permissions",
            "subscriptions.selectors",
            "subscriptions.tokens",
            "subscriptions.abuse",
            "subscriptions.redis_client",
        )
    ),
]


def _sources(*roots: str) -> list[Path]:
    found = (path for root in roots for path in (ROOT / root).rglob("*.py"))
    return sorted(path for path in found if "migrations" not in path.relative_to(ROOT).parts)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in _sources(*PRODUCT)}


def _known(name: str) -> str | None:
    """The module `name` is, or the innermost of ours that holds it."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        names = [_known(alias.name) for alias in node.names]
        return [name for name in names if name]
    base = node.module or ""
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    names = [_known(f"{base}.{alias.name}") for alias in node.names]
    return [name for name in names if name]


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[name].update(target for target in _targets(name, node) if target != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []
    counter = itertools.count()

    def visit(node: str) -> None:
        index[node] = low[node] = next(counter)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while (member := stack.pop()) != node:
                group.append(member)
            group.append(node)
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_no_import_cycle_even_through_imports_inside_functions():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle_through_a_deferred_import():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_point_one_way():
    graph = import_graph()
    upward = [
        f"{source} imports {target}"
        for source, targets in graph.items()
        for target in targets
        for lower, upper in FORBIDDEN
        if _within(source, lower) and _within(target, upper)
    ]
    assert upward == []


def test_the_layer_rules_see_imports_inside_functions(tmp_path):
    tree = ast.parse("def f():\n    from subscriptions import tasks\n")
    [node] = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert _targets("subscriptions.services.signup", node) == ["subscriptions.tasks"]


@pytest.mark.parametrize("path", _sources(*MEASURED), ids=lambda path: str(path.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path):
    source = path.read_text()
    lines = source.count("\n")
    assert lines <= MAX_MODULE_LINES, f"{lines} lines: split it by what its parts hold"
    long = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - first + 1
            if length > MAX_FUNCTION_LINES:
                long.append(f"{node.name} ({length} lines, from line {first})")
    assert long == []
