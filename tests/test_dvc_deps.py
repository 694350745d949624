"""dvc.yaml's deps cannot drift from the code: every sftboot module a stage script imports, directly or through
other modules (any import statement, module-level or inside a function), is one of the stage's deps or lies in a
folder that is, so editing it reruns the stage."""

import ast
from pathlib import Path

import yaml
from conftest import ROOT

SOURCE = ROOT / "src"
REGISTRY = SOURCE / "sftboot" / "envs" / "__init__.py"


def _module_file(name: str) -> Path | None:
    base = SOURCE.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.exists():
            return candidate
    return None


def _imported_files(path: Path) -> set[Path]:
    """The sftboot files an import in `path` runs: each module named and every package above it (its __init__ runs first)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}  # `from package import module`
    files = set()
    for name in (name for name in names if name.split(".")[0] == "sftboot"):
        parts = name.split(".")
        files |= {found for i in range(1, len(parts) + 1) if (found := _module_file(".".join(parts[:i])))}
    return files


def _closure(script: Path) -> set[Path]:
    seen, pending = set(), [script]
    while pending:
        path = pending.pop()
        if path not in seen:
            seen.add(path)
            pending.extend(_imported_files(path))
            if path == REGISTRY:  # the builtin environments are imported by name, from strings the ast does not follow
                pending.extend(REGISTRY.parent.rglob("*.py"))
    return {path for path in seen if SOURCE in path.parents}


def _stages() -> dict[str, dict]:
    """dvc.yaml's stages by name, each as its body (a foreach stage's template)."""
    return {name: stage.get("do", stage) for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items()}


def _path_deps(body: dict) -> list[str]:
    return [dep for dep in body["deps"] if isinstance(dep, str)]


def test_every_stage_that_plays_the_environment_depends_on_its_own_code():
    """A user's environment file, named in env.source, reruns every stage that builds the environment when it changes."""
    for name, body in _stages().items():
        if REGISTRY in _closure(ROOT / body["cmd"].split()[1]):
            assert "${env.source}" in body["deps"], f"add ${{env.source}} to the deps of stage {name}"


def test_every_module_a_stage_imports_is_one_of_its_deps():
    missing = {}
    for name, body in _stages().items():
        deps = _path_deps(body)
        for path in _closure(ROOT / body["cmd"].split()[1]):
            relative = path.relative_to(ROOT).as_posix()
            if not any(relative == dep or relative.startswith(dep.rstrip("/") + "/") for dep in deps):
                missing.setdefault(name, []).append(relative)
    assert not missing, f"add to the stages' deps in dvc.yaml: {missing}"


def test_each_stage_lists_a_dep_once():
    """A dep written twice hides which list a later edit belongs in (two copies of the import closure had drifted in once)."""
    repeated = {}
    for name, body in _stages().items():
        deps = _path_deps(body)
        if twice := sorted({dep for dep in deps if deps.count(dep) > 1}):
            repeated[name] = twice
    assert not repeated, f"remove the repeated deps from dvc.yaml: {repeated}"
