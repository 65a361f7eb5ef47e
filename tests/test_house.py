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
