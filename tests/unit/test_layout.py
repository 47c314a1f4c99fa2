"""The package's shape (DESIGN.md, "Lambda functions"): handlers use the shared library, never one another."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "lambda_src" / "ec2_action"
HANDLERS = PACKAGE / "handlers"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, as an absolute dotted name inside the package (ec2_action.handlers.release)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}  # `from . import x` may name a module
    return found


def test_imports_are_resolved_to_absolute_names() -> None:
    assert imported_modules(HANDLERS / "release.py") >= {"ec2_action.instances", "ec2_action.config"}


def test_no_handler_imports_another_handler() -> None:
    handlers = {f"ec2_action.handlers.{path.stem}" for path in HANDLERS.glob("*.py") if path.stem != "__init__"}
    crossing = {
        path.name: sorted(imported_modules(path) & (handlers - {f"ec2_action.handlers.{path.stem}"}))
        for path in HANDLERS.glob("*.py")
    }
    assert {name: found for name, found in crossing.items() if found} == {}, (
        "a handler is never a library: move what handlers share into lambda_src/ec2_action/"
    )


def test_the_library_never_imports_a_handler() -> None:
    crossing = {
        path.name: sorted(name for name in imported_modules(path) if name.startswith("ec2_action.handlers"))
        for path in PACKAGE.glob("*.py")
    }
    assert {name: found for name, found in crossing.items() if found} == {}
