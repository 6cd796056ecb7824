"""Shared fixtures: a small synthetic dataset, a real int8 bundle trained on it, shared datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"

# Small enough to train in about a minute on two cores, large enough to separate the defects.
FIT_SETTINGS = dict(
    model="original",
    image_size=128,
    crop=(24, 24, 208, 208),
    blur_ksize=5,
    min_cluster_px=10,
    epochs=40,
    batch_size=8,
    seed=0,
    name="flange-test",
    version="t1",
)


def shared_dataset(name: str) -> Path:
    """Path of a dataset in ../shared/datasets; skip (or fail in CI) when it is absent."""
    path = DATASETS / name
    if not path.is_dir():
        reason = f"{path} is absent (public datasets live beside the project in ../shared)"
        if os.environ.get("LINESIDE_REQUIRE_DATASETS"):
            pytest.fail(f"CI expects the shared datasets: {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MiB tmpfs: a real file system that fills up. CI (root) must be able to make it."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or os.system(f"mount -t tmpfs -o size=8m tmpfs {mount}") != 0:
        reason = "mounting a small tmpfs needs root and a machine that allows it"
        if os.environ.get("CI"):
            pytest.fail(f"CI runs as root and must test a full disk: {reason}")
        pytest.skip(reason)
    yield mount
    os.system(f"umount {mount}")


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    from lineside.trainer.synth import write_dataset

    out = tmp_path_factory.mktemp("synth") / "flange"
    write_dataset(out, seed=3, train=64, test_good=6, test_per_defect=3)
    return out


@pytest.fixture(scope="session")
def trained(synth_dir, tmp_path_factory):
    """A real bundle: the real trainer, a real int8 LiteRT model. Returns the FitResult."""
    from lineside.trainer.fit import FitOptions, fit

    out = tmp_path_factory.mktemp("bundle") / "flange.lsb"
    return fit(synth_dir, out, FitOptions(**FIT_SETTINGS), say=lambda _: None)


@pytest.fixture(scope="session")
def bundle_path(trained) -> Path:
    return trained.path


@pytest.fixture(scope="session")
def feature_fit(synth_dir, tmp_path_factory):
    """The default model family, fitted with only the line's camera stated: the tests' line
    videos are MJPEG, which the PNG training images never went through (`--camera jpeg`)."""
    from lineside.trainer.fit import FitOptions, fit

    out = tmp_path_factory.mktemp("features") / "flange-features.lsb"
    return fit(synth_dir, out, FitOptions(version="f1", camera="jpeg"), say=lambda _: None)


SLOW_FIXTURES = {"trained", "bundle_path", "synth_dir", "feature_fit"}
# Fits on the shared datasets, and a whole box install into a fresh virtual environment.
SLOW_MODULES = {"test_quality_real", "test_box_install"}


def pytest_collection_modifyitems(config, items):
    """Training, real datasets and whole processes are `slow`: `pytest -m "not slow"` skips them."""
    for item in items:
        in_system = "system" in item.path.parts
        slow_module = item.path.stem in SLOW_MODULES
        if in_system or slow_module or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


# What each missing piece of the machine needs, as a skip reason names it.
INSTALLS = {
    "mosquitto": "mosquitto",
    "chromium-driver": "chromium chromium-driver",
    "arv-fake-gv-camera": "aravis-tools gir1.2-aravis-0.8 libgirepository1.0-dev libcairo2-dev",
}


_NOT_RUN = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Gather what did not run and why, and the command that fixes it (printed last)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    packages = sorted({p for key, p in INSTALLS.items() if any(key in r for r in reasons)})
    lines = ["", f"NOT RUN: {len(skipped)} test(s) were skipped; this run is not the whole suite:"]
    lines += [f"  {n:4d}  {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])]
    if packages:
        lines.append(
            f"Install what they need, then run again: sudo apt-get install {' '.join(packages)}"
        )
        lines.append("(scripts/test.sh installs it itself when run as root where apt-get exists)")
    config.stash[_NOT_RUN] = lines


def pytest_unconfigure(config):
    """After pytest's own summary line, so it is the last thing a newcomer reads."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    for line in config.stash.get(_NOT_RUN, []) if reporter else []:
        reporter.write_line(line)
