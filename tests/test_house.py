"""The house's naming rule that import-linter cannot check: a name with a leading underscore
belongs to its own module. A helper another module imports is part of its module's public
face, so it has a public name (docs/architecture.md, "The rules")."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cargorisk", "common", "features", "training", "serving", "simulator")


def private_imports(path: Path) -> list[str]:
    """``from <house module> import _name`` in one file, as ``line: module._name``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{node.lineno}: {node.module}.{alias.name}")
    return found


def test_no_module_imports_another_modules_private_names():
    offenders = {
        str(path.relative_to(ROOT)): hits
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if (hits := private_imports(path))
    }
    assert offenders == {}


def test_the_check_sees_a_private_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from features.tables import _read_partitions, read_frame\n")
    assert private_imports(module) == ["1: features.tables._read_partitions"]


MEMORY_STATE = tuple(
    f"features.online.{name}" for name in ("state", "bulk", "update", "storage", "aggregates")
)
"""The in-memory feature state (a copy of the whole history in one process): the service no
longer holds one (issue 15); its features come from the store's online aggregates."""


def memory_state_imports(path: Path) -> list[str]:
    """Imports of the in-memory feature state in one file (its modules, or the package's
    ``OnlineFeatureState``), as ``line: name``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith(MEMORY_STATE) or name == "features.online.OnlineFeatureState":
                found.append(f"{node.lineno}: {name}")
    return found


def test_the_service_and_the_cli_hold_no_history_in_memory():
    offenders = {
        str(path.relative_to(ROOT)): hits
        for package in ("serving", "cargorisk")
        for path in sorted((ROOT / package).rglob("*.py"))
        if (hits := memory_state_imports(path))
    }
    assert offenders == {}


def test_the_check_sees_an_import_of_the_memory_state(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from features.online import OnlineFeatureState, rows\n"
        "from features.online.storage import StateStorage\n"
        "import features.online.bulk\n"
        "from features.online.views import linked_from\n"
    )
    assert memory_state_imports(module) == [
        "1: features.online.OnlineFeatureState",
        "2: features.online.storage.StateStorage",
        "3: features.online.bulk",
    ]
