"""Imports flow one way: trainer -> daemon -> deploy; the edge packages never import TensorFlow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "daemon": {"tensorflow", "keras", "lineside.trainer", "sklearn", "matplotlib"},
    "deploy": {"tensorflow", "keras", "cv2", "lineside.daemon", "lineside.trainer"},
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(path):
            for banned in FORBIDDEN[package]:
                assert not (name == banned or name.startswith(banned + ".")), (
                    f"{path.relative_to(ROOT)} imports {name}"
                )
