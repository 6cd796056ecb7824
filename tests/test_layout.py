"""The house's rules: imports flow one way, and the daemon's rooms keep to themselves.

trainer -> daemon -> deploy; inside the daemon, the service and its intake (top level) -> sinks
-> core. The core is pure (arrays in, arrays out): no I/O libraries, no threads. The edge
packages never import TensorFlow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DAEMON_TOP = {p.stem for p in (ROOT / "daemon").glob("*.py")} - {"__init__"}

FORBIDDEN = {
    "daemon": {"tensorflow", "keras", "lineside.trainer", "sklearn", "matplotlib"},
    "deploy": {"tensorflow", "keras", "cv2", "lineside.daemon", "lineside.trainer"},
    # The pure core: no sinks, no service, nothing that talks to the world or runs threads.
    "daemon/core": {
        "lineside.daemon.sinks",
        *(f"lineside.daemon.{m}" for m in DAEMON_TOP),
        "paho",
        "sqlite3",
        "socket",
        "threading",
        "subprocess",
        "yaml",
    },
    # The trainer scores with the box's own post-processing (pipeline.postprocess), never a copy.
    "trainer": {"lineside.daemon.core.denoise", "lineside.daemon.core.score"},
    # Sinks consume inspections: they may use the core and the configuration's schema, never
    # the service, the camera or the bundle intake.
    "daemon/sinks": {f"lineside.daemon.{m}" for m in DAEMON_TOP - {"config"}},
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(path):
            for banned in FORBIDDEN[package]:
                assert not (name == banned or name.startswith(banned + ".")), (
                    f"{path.relative_to(ROOT)} imports {name}"
                )


def test_the_rooms_are_where_a_newcomer_looks():
    """The tree shows the architecture: core stages, sinks, and the service at the top."""
    core = {p.stem for p in (ROOT / "daemon" / "core").glob("*.py")}
    stages = {"preprocess", "anomaly_map", "denoise", "regions", "score", "verdict", "pipeline"}
    assert stages <= core
    sinks = {p.stem for p in (ROOT / "daemon" / "sinks").glob("*.py")}
    assert {"outbox", "mqtt", "mqtt_topics"} <= sinks
    assert {"service", "camera", "config", "bundle_store", "cli"} <= DAEMON_TOP


def test_no_module_too_long_to_read_in_one_sitting():
    for path in sorted(ROOT.glob("*/**/*.py")):
        if ".venv" in path.parts:
            continue
        lines = len(path.read_text().splitlines())
        assert lines <= 400, f"{path.relative_to(ROOT)} has {lines} lines"
