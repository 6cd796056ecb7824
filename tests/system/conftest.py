"""Fixtures for running the service: a broker, a video of parts, a configured daemon."""

from __future__ import annotations

import pytest

from tests.support.broker import Broker
from tests.support.daemon import DaemonProcess, write_config


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def parts_video(tmp_path_factory):
    from lineside.trainer.synth import write_video

    path = tmp_path_factory.mktemp("video") / "parts.avi"
    write_video(path, seed=11, frames=40, fps=10, defect_every=4)
    return path


@pytest.fixture(scope="session")
def station_keys(tmp_path_factory):
    """The maintenance key pair the test stations trust: (private key, trusted folder)."""
    from lineside.deploy import signing

    folder = tmp_path_factory.mktemp("station-keys")
    private, public = signing.generate(folder / "keys", "maintenance")
    trusted = folder / "trusted"
    trusted.mkdir()
    (trusted / public.name).write_bytes(public.read_bytes())
    return signing.load_private(private), trusted


@pytest.fixture(scope="session")
def signed_bundle(bundle_path, station_keys, tmp_path_factory):
    """The test bundle signed with the stations' trusted key."""
    from lineside.deploy import bundle as bundles

    path = tmp_path_factory.mktemp("signed") / "flange-signed.lsb"
    path.write_bytes(bundles.sign(bundle_path.read_bytes(), station_keys[0]))
    return path


@pytest.fixture(scope="session")
def signed_default(feature_fit, station_keys, tmp_path_factory):
    """The default model family's bundle (fitted, the same every run), signed for the stations:
    scores on the scale a line sees."""
    from lineside.deploy import bundle as bundles

    path = tmp_path_factory.mktemp("signed") / "flange-default-signed.lsb"
    path.write_bytes(bundles.sign(feature_fit.path.read_bytes(), station_keys[0]))
    return path


@pytest.fixture
def start_daemon(tmp_path, signed_bundle, station_keys):
    """start_daemon(port, **overrides) -> DaemonProcess; every process is stopped at the end."""
    started: list[DaemonProcess] = []

    def start(port: int, name: str = "daemon", env: dict | None = None, **overrides):
        settings = {
            "station": "cell-1",
            "source": overrides.pop("source"),
            "model": {
                "path": str(signed_bundle),
                "store": str(tmp_path / "bundles"),
                "trusted_keys": str(station_keys[1]),
            },
            "mqtt": {"host": "127.0.0.1", "port": port, "keepalive_s": 5},
            "stats": {"interval_s": 1},
            "heatmap": {"every_nth_pass": 5},
            "outbox": {"path": str(tmp_path / "outbox.db")},
            "threads": 1,
        }
        settings.update(overrides)
        if "store" not in settings["model"]:
            settings["model"] = {**settings["model"], "store": str(tmp_path / "bundles")}
        if not {"trusted_keys", "allow_unsigned"} & set(settings["model"]):
            settings["model"] = {**settings["model"], "trusted_keys": str(station_keys[1])}
        config = write_config(tmp_path / f"{name}.yaml", **settings)
        proc = DaemonProcess(config, tmp_path / f"{name}.log", env=env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.kill()
