"""The house's rules: imports flow one way, and the daemon's rooms keep to themselves.

trainer -> daemon -> deploy. Inside the daemon, each room may import only rooms below it:

    cli                               the command line (top)
    bench                             `lineside-daemon bench`
    service                           lifecycle, station, consumers, control, labels, stats,
                                      preflight
    page                              the operator's page (served by the service)
    sinks                             consumers of inspections
    capture, transport, intake        frames in; results and commands travel; bundles in
    config, runtime, telemetry,       the configuration's schema; the model on LiteRT; the
    memory                            station's state, one owner; the allocator's policy
    core                              pure stages: arrays in, arrays out

The core has no I/O libraries and no threads. The edge packages never import TensorFlow. No
module imports another that imports it back, however far round.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DAEMON = ROOT / "daemon"

# Each room's level: a module may import modules of its own room and of lower levels only.
LEVELS = {
    "core": 0,
    "config": 1,
    "runtime": 1,
    "telemetry": 1,
    "memory": 1,
    "capture": 2,
    "transport": 2,
    "intake": 2,
    "sinks": 3,
    "page": 4,
    "service": 5,
    "cli": 7,
    "bench": 6,
}
TOP_LEVEL_MODULES = {
    *("__init__", "cli", "bench", "config", "runtime", "telemetry", "memory"),
}

FORBIDDEN = {
    "daemon": {"tensorflow", "keras", "lineside.trainer", "sklearn", "matplotlib"},
    "deploy": {"tensorflow", "keras", "cv2", "lineside.daemon", "lineside.trainer"},
    "daemon/core": {"paho", "sqlite3", "socket", "threading", "subprocess", "yaml"},
    # The trainer scores with the box's own post-processing (pipeline.postprocess), never a copy.
    "trainer": {"lineside.daemon.core.denoise", "lineside.daemon.core.score"},
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


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = ("lineside", *rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> str | None:
    """`lineside.daemon.sinks.review` -> "sinks"; None for the package itself."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "daemon" else None


MODULES = {_module(p): p for p in sorted(DAEMON.rglob("*.py"))}


def _daemon_imports(module: str) -> set[str]:
    """The daemon modules `module` imports (a `from package import name` counts the module)."""
    out = set()
    for name in _imports(MODULES[module]):
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module and name != "lineside.daemon":
            out.add(name)
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(path):
            for banned in FORBIDDEN[package]:
                assert not (name == banned or name.startswith(banned + ".")), (
                    f"{path.relative_to(ROOT)} imports {name}"
                )


def test_every_room_has_its_level():
    rooms = {_room(m) for m in MODULES} - {None}
    assert rooms == set(LEVELS), f"rooms without a level, or levels without a room: {rooms}"
    top = {p.stem for p in DAEMON.glob("*.py")}
    assert top == TOP_LEVEL_MODULES, "a new module at the top: give it a room"


def test_each_room_imports_only_rooms_below_it():
    """Rooms on one level stay out of each other too: frames, transport and bundles meet only in
    the service."""
    wrong = []
    for module in MODULES:
        room = _room(module)
        for other in _daemon_imports(module):
            there = _room(other)
            if room and there and there != room and LEVELS[there] >= LEVELS[room]:
                wrong.append(f"{module} ({room}) imports {other} ({there})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    graph = {m: _daemon_imports(m) for m in MODULES}
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in graph[m]:
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, m, n]))
            if n not in state:
                visit(n, [*path, m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def test_the_rooms_are_where_a_newcomer_looks():
    """The tree shows the architecture: where a stage, a sink, a camera source or a bundle check
    goes."""

    def room(name: str) -> set[str]:
        return {p.stem for p in (DAEMON / name).glob("*.py")}

    assert {"preprocess", "anomaly_map", "denoise", "regions", "score", "verdict"} <= room("core")
    assert {"mqtt_topics", "review", "sparkplug", "opcua", "page", "plc", "modbus"} <= room("sinks")
    assert {"camera", "genicam", "image_files", "triggers"} <= room("capture")
    assert {"link", "outbox", "connection", "commands", "inbox"} <= room("transport")
    assert {"bundle_store", "swap", "model_watch", "selftest"} <= room("intake")
    assert {"lifecycle", "station", "consumers", "control", "stats"} <= room("service")


def test_no_module_too_long_to_read_in_one_sitting():
    for path in sorted(ROOT.glob("*/**/*.py")):
        if ".venv" in path.parts or "build" in path.parts:
            continue
        lines = len(path.read_text().splitlines())
        assert lines <= 400, f"{path.relative_to(ROOT)} has {lines} lines"


def test_the_trainer_keeps_a_folder_per_model_family():
    """`fit` dispatches to the families; a family never reaches into another, and what both use
    sits once at the trainer's top."""
    trainer = ROOT / "trainer"
    families = {"features", "pixels"}
    assert families <= {p.name for p in trainer.iterdir() if (p / "__init__.py").exists()}
    for family in families:
        for path in (trainer / family).glob("*.py"):
            for name in _imports(path):
                for other in families - {family}:
                    assert not name.startswith(f"lineside.trainer.{other}"), (
                        f"{path.relative_to(ROOT)} imports {name}"
                    )
    shared = {p.stem for p in trainer.glob("*.py")}
    for family in families:
        assert not shared & {p.stem for p in (trainer / family).glob("*.py")} - {
            "__init__",
            "fit",
        }, f"a module of {family} shares its name with one the families share"
