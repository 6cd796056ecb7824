"""End to end as a user runs it: the trained bundle, `lineside-daemon inspect`, JSON lines out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from lineside.deploy import bundle as bundles


def inspect(*args: str | Path, timeout: int = 180) -> tuple[int, list[dict], str]:
    run = subprocess.run(
        [sys.executable, "-m", "lineside.daemon.cli", "inspect", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    return run.returncode, lines, run.stderr


@pytest.fixture(scope="module")
def test_run(bundle_path, synth_dir, tmp_path_factory):
    heatmaps = tmp_path_factory.mktemp("heatmaps")
    status, lines, _ = inspect(bundle_path, synth_dir / "test", "--heatmaps", heatmaps)
    assert status == 0
    return lines, heatmaps


def _label(line: dict) -> str:
    return Path(line["source"]).parent.name


def _truth(synth_dir: Path, line: dict) -> np.ndarray:
    src = Path(line["source"])
    return cv2.imread(str(synth_dir / "ground_truth" / src.parent.name / f"{src.stem}_mask.png"), 0)


def test_defective_parts_score_higher_than_good_ones(test_run):
    lines, _ = test_run
    assert len(lines) == 6 + 5 * 3
    y = [_label(line) != "good" for line in lines]
    scores = [line["score"] for line in lines]
    assert roc_auc_score(y, scores) > 0.8
    good = [s for s, bad in zip(scores, y, strict=True) if not bad]
    bad = [s for s, is_bad in zip(scores, y, strict=True) if is_bad]
    assert np.mean(bad) > 3 * np.mean(good)


def test_regions_land_on_the_ground_truth(test_run, synth_dir):
    lines, _ = test_run
    flagged = [line for line in lines if _label(line) != "good" and line["regions"]]
    assert len(flagged) >= 10
    hits = 0
    for line in flagged:
        truth = _truth(synth_dir, line) > 0
        drawn = np.zeros_like(truth, np.uint8)
        for region in line["regions"]:
            cv2.fillPoly(drawn, [np.array(region["contour"], np.int32)], 1)
            x, y, w, h = region["box"]
            assert x >= 0 and y >= 0 and x + w <= 256 and y + h <= 256
        hits += bool((truth & (drawn > 0)).any())
    assert hits >= 0.8 * len(flagged)


def test_every_frame_has_a_heatmap_and_full_result(test_run):
    lines, heatmaps = test_run
    for line in lines:
        assert line["verdict"] in ("pass", "review", "fail")
        assert set(line["latency_ms"]) >= {"preprocess", "inference", "denoise", "verdict"}
        assert line["model"] == {"name": "flange-test", "version": "t1"}
        image = cv2.imread(line["heatmap"])
        assert image.shape == (256, 256, 3)
    assert len(list(heatmaps.glob("*.jpg"))) == len(lines)


def test_weld_region_check(bundle_path, synth_dir, tmp_path):
    """Job 1: where a weld must be, the change must appear; on a part without it, fail."""
    welded = synth_dir / "test" / "weld" / "000.png"
    ys, xs = np.nonzero(_truth(synth_dir, {"source": str(welded)}))
    box = [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1]
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        yaml.safe_dump(
            {"rois": [{"name": "weld", "box": box, "expect": "present", "min_fraction": 0.05}]}
        )
    )
    status, (with_weld, without), _ = inspect(
        bundle_path, welded, synth_dir / "test" / "good" / "000.png", "--rules", rules
    )
    assert status == 0
    assert with_weld["rois"][0]["ok"] is True
    assert without["rois"][0]["ok"] is False and without["verdict"] == "fail"


def test_bad_rules_file_exits_2_with_key_path(bundle_path, synth_dir, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rois:\n  - name: w\n    box: [1, 2, 3]\n    expect: maybe\n")
    status, lines, err = inspect(bundle_path, synth_dir / "test" / "good", "--rules", rules)
    assert status == 2 and lines == []
    assert "rois.0." in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def _broken_bundles(bundle_path: Path, tmp_path: Path) -> dict[str, Path]:
    import io
    import zipfile

    data = bundle_path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["model.tflite"] = members["model.tflite"][:-10] + b"0123456789"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    cases = {"bad zip": b"PK\x03\x04 truncated", "hash mismatch": buf.getvalue()}
    paths = {}
    for name, content in cases.items():
        paths[name] = tmp_path / f"{name.replace(' ', '_')}.lsb"
        paths[name].write_bytes(content)
    paths["missing"] = tmp_path / "missing.lsb"
    return paths


@pytest.mark.parametrize(
    "case,reason",
    [
        ("missing", "no such bundle file"),
        ("bad zip", "not a zip"),
        ("hash mismatch", "SHA-256 does not match"),
    ],
)
def test_unusable_bundle_exits_2_with_one_line(case, reason, bundle_path, synth_dir, tmp_path):
    path = _broken_bundles(bundle_path, tmp_path)[case]
    status, lines, err = inspect(path, synth_dir / "test" / "good" / "000.png")
    assert status == 2 and lines == []
    assert reason in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_frames_are_error_lines_and_the_run_goes_on(bundle_path, synth_dir, tmp_path):
    good = synth_dir / "test" / "good" / "000.png"
    frame = cv2.imread(str(good))
    unreadable = tmp_path / "unreadable.png"
    unreadable.write_bytes(b"garbage")
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), cv2.resize(frame, (200, 200)))
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    status, lines, err = inspect(bundle_path, unreadable, small, gray, tmp_path / "gone.png", good)
    assert status == 1 and "Traceback" not in err
    errors = [line.get("error", "") for line in lines]
    assert "not a readable image" in errors[0]
    assert "trained on 256x256 px frames" in errors[1]
    assert "1 channel(s), the model was trained on 3" in errors[2]
    assert "no such file" in errors[3]
    assert "error" not in lines[4] and lines[4]["verdict"] in ("pass", "review", "fail")


def test_video_file_is_inspected_frame_by_frame(feature_fit, synth_dir, tmp_path):
    """The default model (fitted, not trained: the same bundle every run) on an MJPEG video."""
    bundle_path = feature_fit.path
    video = tmp_path / "line.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (256, 256))
    for kind in ("good", "spot", "good"):
        writer.write(cv2.imread(str(synth_dir / "test" / kind / "001.png")))
    writer.release()
    status, lines, _ = inspect(bundle_path, video)
    assert status == 0 and [line["source"][-2:] == f"#{i}" for i, line in enumerate(lines)] == [
        True,
        True,
        True,
    ]
    assert lines[1]["score"] > max(lines[0]["score"], lines[2]["score"])


def test_bundle_file_is_what_the_manifest_says(bundle_path):
    b = bundles.read(bundle_path)
    assert b.manifest.files["model.tflite"] == bundles.sha256_hex(b.model_bytes)
