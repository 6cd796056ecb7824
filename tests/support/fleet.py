"""A fleet of real stations on one broker: N daemon processes, each with its own name, store and
outbox, inspecting the same small video at a low frame rate."""

from __future__ import annotations

from pathlib import Path

from tests.support.daemon import DaemonProcess, write_config


def names(n: int) -> list[str]:
    return [f"cell-{i:02d}" for i in range(1, n + 1)]


def start(
    n: int,
    port: int,
    folder: Path,
    bundle: Path,
    video: Path,
    fps: float,
    trusted: Path | None = None,
) -> dict[str, DaemonProcess]:
    """Start `n` stations; `trusted` None runs them with unsigned bundles allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    procs = {}
    for name in names(n):
        model = {"path": str(bundle), "store": str(folder / f"{name}-bundles")}
        model.update({"trusted_keys": str(trusted)} if trusted else {"allow_unsigned": True})
        config = write_config(
            folder / f"{name}.yaml",
            station=name,
            source={"kind": "video", "path": str(video), "loop": True, "fps": fps},
            model=model,
            mqtt={"host": "127.0.0.1", "port": port, "keepalive_s": 5},
            stats={"interval_s": 5},
            outbox={"path": str(folder / f"{name}-outbox.db")},
            threads=1,
        )
        procs[name] = DaemonProcess(config, folder / f"{name}.log")
    return procs


def stop(procs: dict[str, DaemonProcess], timeout: float = 30) -> dict[str, int]:
    """SIGTERM to all, then wait for each; name -> exit status."""
    for proc in procs.values():
        proc.proc.terminate()
    return {name: proc.wait(timeout) for name, proc in procs.items()}
