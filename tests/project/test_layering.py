"""The packages under src/ depend on each other in one direction only.

widf_loader is the Lambda artefact, so it imports nothing else of ours;
widf_ops (the administrator's side) may use the loader but not the local stack
or the command; the local stack is an emulator and borrows none of our code:
if it shared code with what it tests, a mistake in that code could pass unseen
on both sides. Only the command (widf_cli) brings them together.

Imports are read from the source with `ast`, every form: `import a.b`,
`from a import b`, relative imports, imports inside functions, and
`importlib.import_module` / `__import__` with a literal name.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

from helpers import REPOSITORY

SRC = REPOSITORY / "src"
OURS = ("widf_loader", "widf_ops", "widf_local", "widf_cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    base = SRC.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imported_by(path: Path) -> set[str]:
    """Every module of ours this file imports, anywhere in it."""
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, one level up per extra dot
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                found.add(f"{module}.{alias.name}" if is_module(f"{module}.{alias.name}") else module)
        elif (
            isinstance(node, ast.Call)
            and (getattr(node.func, "attr", None) == "import_module" or getattr(node.func, "id", None) in ("import_module", "__import__"))
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return {name for name in found if name.split(".")[0] in OURS}


def imports() -> set[tuple[str, str]]:
    """(importing module, imported module) for every import of ours under src/."""
    return {(module_name(path), imported) for path in SRC.rglob("*.py") for imported in imported_by(path)}


def crossing(importer_prefix: str, imported_packages: tuple[str, ...]) -> set[tuple[str, str]]:
    return {
        (importer, imported)
        for importer, imported in imports()
        if (importer == importer_prefix or importer.startswith(importer_prefix + ".")) and imported.split(".")[0] in imported_packages
    }


def test_the_imports_are_read_from_every_package():
    found = imports()
    assert {importer.split(".")[0] for importer, _ in found} == set(OURS)
    assert ("widf_loader.handler", "widf_loader.pipeline") in found
    assert ("widf_cli.aws", "widf_local.deploy") in found  # an import inside a function


def test_the_loader_imports_nothing_else_of_ours():
    assert crossing("widf_loader", ("widf_ops", "widf_local", "widf_cli")) == set()


def test_the_administrators_tools_import_neither_the_local_stack_nor_the_command():
    assert crossing("widf_ops", ("widf_local", "widf_cli")) == set()


def test_the_local_stack_imports_neither_the_loader_nor_the_tools_nor_the_command():
    assert crossing("widf_local", ("widf_loader", "widf_ops", "widf_cli")) == set()


def test_the_projects_environment_has_connector_5_and_no_emulator():
    # The emulators and the 4.x connector fakesnow needs live in the local stack's own environment, so
    # they cannot pin what the tools run on.
    import importlib.metadata
    import importlib.util

    assert importlib.metadata.version("snowflake-connector-python").startswith("5.")
    assert [name for name in ("fakesnow", "moto", "duckdb", "sqlglot") if importlib.util.find_spec(name)] == []
    local_python = SRC.parent / "local" / ".venv" / "bin" / "python"
    versions = subprocess.run(
        [str(local_python), "-c", "import importlib.metadata as m; print(m.version('snowflake-connector-python'), m.version('fakesnow'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert versions[0].startswith("4.") and versions[1]
