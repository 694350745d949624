"""The architecture holds: src/sftboot's folders are layers, each importing only the layers below it, and no
module imports itself back through others. Every import statement counts, under TYPE_CHECKING or inside a function too."""

import ast
import re
from graphlib import CycleError, TopologicalSorter

from conftest import ROOT

SOURCE = ROOT / "src"
# Top to bottom; packages in one layer are independent of each other.
LAYERS = [["app"], ["evaluation"], ["training"], ["data"], ["envs", "policies"], ["engine"], ["core"]]
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}


def _modules() -> dict[str, set[str]]:
    """Each sftboot module and the sftboot modules it imports."""
    graph = {}
    for path in (SOURCE / "sftboot").rglob("*.py"):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                imported |= {(base, alias.name) for alias in node.names}  # `from package import module` imports the module
        graph[name] = imported
    return {name: {other for item in imported if (other := _resolved(item, graph)) in graph and other != name} for name, imported in graph.items()}


def _resolved(item: str | tuple[str, str], modules: dict) -> str:
    """A module name; `from base import name` names the module base.name where there is one, else base."""
    if isinstance(item, str):
        return item
    base, name = item
    return f"{base}.{name}" if f"{base}.{name}" in modules else base


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_package_is_in_a_layer():
    packages = {_package(name) for name in _modules()} - {None}
    assert packages <= set(RANK), f"put these in LAYERS: {sorted(packages - set(RANK))}"


def test_no_import_runs_up_a_layer_or_across_one():
    wrong = [
        f"{name} -> {other}"
        for name, imported in _modules().items()
        for other in imported
        if _package(name) and _package(other) and _package(name) != _package(other) and RANK[_package(other)] <= RANK[_package(name)]
    ]
    assert not wrong, "imports against the layers (top to bottom: " + " > ".join("|".join(layer) for layer in LAYERS) + "): " + "; ".join(sorted(wrong))


def test_no_import_cycle():
    try:
        tuple(TopologicalSorter(_modules()).static_order())
    except CycleError as error:
        raise AssertionError(f"import cycle: {' -> '.join(error.args[1])}") from None


def test_only_its_own_package_and_the_builtin_list_name_the_reference_task():
    """Environments own their task: tic-tac-toe's words appear in its package and in the registry's list of builtins, nowhere else."""
    words = re.compile(r"tictactoe|tic-tac-toe|minimax|expectimax|opponent_p", re.IGNORECASE)
    package, registry = SOURCE / "sftboot" / "envs" / "tictactoe", SOURCE / "sftboot" / "envs" / "__init__.py"
    naming = [
        path.relative_to(ROOT).as_posix()
        for path in (SOURCE / "sftboot").rglob("*")
        if path.is_file() and path.suffix in {".py", ".html"} and package not in path.parents and path != registry and words.search(path.read_text())
    ]
    assert not naming, f"these name tic-tac-toe outside its package; ask the environment instead: {naming}"
