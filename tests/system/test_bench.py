"""`lineside-daemon bench` runs on a user's box with just a bundle; here its report is checked for
completeness and consistency, never for speed."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def _bench(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lineside.daemon.cli", "bench", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_bench_json_reports_every_stage(bundle_path):
    run = _bench(bundle_path, "--frames", 30, "--threads", 1, "--json")
    assert run.returncode == 0, run.stderr
    r = json.loads(run.stdout)
    stages = {
        "capture_decode",
        "preprocess",
        "inference",
        "anomaly_map",
        "denoise",
        "regions",
        "verdict",
        "publish",
        "heatmap_encode",
    }
    assert set(r["stages_ms"]) == stages and r["threads"] == 1
    for s in r["stages_ms"].values():
        assert 0 <= s["median"] <= s["p95"]
    assert r["end_to_end_fps"] > 0 and r["model_only_fps"] > 0 and r["overhead_ratio"] > 0
    assert r["macs_per_frame"] > 100_000_000  # the original model at 128 px: about 208 M
    assert r["resident_mb"] > 10


def test_bench_table_on_a_video_source(bundle_path, parts_video):
    run = _bench(bundle_path, "--frames", 20, "--source", parts_video)
    assert run.returncode == 0, run.stderr
    assert "end-to-end" in run.stdout and "% of inference" in run.stdout


def test_bench_bad_arguments(bundle_path, tmp_path):
    run = _bench(bundle_path, "--frames", 0)
    assert run.returncode == 2 and "at least 1" in run.stderr
    run = _bench(tmp_path / "missing.lsb")
    assert run.returncode == 2 and "no such bundle file" in run.stderr


def test_overhead_benchmark_prints_every_stage_and_its_floor(bundle_path):
    run = subprocess.run(
        [sys.executable, "benchmarks/overhead.py", str(bundle_path), "--repeats", "5"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    rows = {line[:18].strip(): line[18:].split() for line in run.stdout.splitlines()}
    for stage in ("preprocess", "anomaly map", "denoise + score", "regions", "publish (JSON)"):
        stage_us, _, floor_us, _ = rows[stage]
        assert float(stage_us) > 0 and float(floor_us) >= 0
    assert float(rows["model (invoke)"][0]) > 0
    assert len(rows["all but the model"]) == 4


def test_bench_times_parts_triggered_by_a_modbus_plc(feature_fit):
    run = _bench(feature_fit.path, "--plc", 25, "--json")
    assert run.returncode == 0, run.stderr
    r = json.loads(run.stdout)
    assert (r["parts"], r["answered"], r["no_answer"]) == (25, 25, 0)
    link, plc = r["trigger_to_answer_ms"], r["plc_round_trip_ms"]
    assert 0 < link["p50"] <= link["p99"] <= link["max"] < r["deadline_ms"]
    # The PLC sees the answer after the link set it: its round trip includes the link's.
    assert plc["p50"] >= link["p50"] and plc["max"] >= link["max"]
    table = _bench(feature_fit.path, "--plc", 5)
    assert "trigger to result registers" in table.stdout and "answered 5" in table.stdout
    assert _bench(feature_fit.path, "--plc", 0).returncode == 2
