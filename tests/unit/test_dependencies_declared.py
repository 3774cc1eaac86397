"""Every third-party module the code imports is declared in pyproject.toml: the service's
in ``[project] dependencies`` (what a wheel install brings), the tests' there or in the
``dev`` extra. Import names map to distributions through the installed metadata
(``importlib.metadata.packages_distributions``), so ``PIL`` is Pillow and ``yaml`` PyYAML.
An import guarded by ``except ImportError`` is optional and is not required."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVICE = REPO / "service" / "cardiogate"
TESTS = REPO / "tests"
TRAINING = REPO / "models" / "training"  # cgtrain, imported by the model tests from source
# distributions of this repository that make venv installs from their folders: never looked
# up on an index, where anyone could register their names
PHANTOMS = REPO / "service" / "phantoms"
PLUGIN = REPO / "tests" / "plugins" / "ctqc"


def _normalised(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(*extras: str) -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    names = (re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec) for spec in specs)
    return {_normalised(m.group(1)) for m in names if m is not None}


def _optional(tree: ast.AST) -> set[int]:
    """Line numbers of imports inside ``try`` blocks that catch ImportError."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
            for h in node.handlers
        ):
            lines |= {
                n.lineno for stmt in node.body for n in ast.walk(stmt) if hasattr(n, "lineno")
            }
    return lines


def _imports(root: Path) -> Iterator[tuple[str, Path]]:
    """(top-level module, file) of every absolute import under ``root``."""
    for path in sorted(root.rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        optional = _optional(tree)
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in optional:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                yield name.partition(".")[0], path


def _local(*roots: Path) -> set[str]:
    """Modules and packages that live in the source trees themselves."""
    found = {"cardiogate", "__future__"}
    for root in roots:
        for path in root.rglob("*.py"):
            found.add(path.stem)
            found |= set(path.relative_to(root).parts[:-1])
    return found


def _undeclared(root: Path, declared: set[str], local: set[str]) -> list[str]:
    distributions = packages_distributions()
    missing: dict[str, set[str]] = {}
    for module, path in _imports(root):
        if module in sys.stdlib_module_names or module in local:
            continue
        candidates = {_normalised(d) for d in distributions.get(module, [])}
        if not candidates & declared:
            where = str(path.relative_to(REPO))
            missing.setdefault(f"{module} ({', '.join(sorted(candidates)) or '?'})", set()).add(
                where
            )
    return [f"{module} in {', '.join(sorted(paths))}" for module, paths in sorted(missing.items())]


def test_the_service_imports_only_runtime_dependencies() -> None:
    assert _undeclared(SERVICE, _declared(), _local(SERVICE)) == []


def test_the_tests_import_only_runtime_and_dev_dependencies() -> None:
    local = _local(SERVICE, TESTS, TRAINING, PHANTOMS, PLUGIN)
    assert _undeclared(TESTS, _declared("dev"), local) == []
