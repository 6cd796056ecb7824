"""The trainer's bundle: int8 model, calibrated thresholds and a manifest that tells the truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lineside.daemon.runtime import load_bundle
from lineside.trainer.cli import main as train_main
from lineside.trainer.fit import split


def test_bundle_manifest_matches_its_int8_model(bundle_path):
    bundle, model = load_bundle(bundle_path)
    m = bundle.manifest
    assert m.input.dtype == "int8" and m.output.dtype == "int8"
    assert m.input.shape == (1, 128, 128, 1)
    assert model.input == m.input and model.output == m.output
    assert m.preprocess.crop == (24, 24, 208, 208) and m.preprocess.blur_ksize == 5
    assert (m.frame.height, m.frame.width, m.frame.channels) == (256, 256, 3)
    assert m.model.name == "flange-test" and m.model.version == "t1"


def test_calibration_is_recorded_and_held_out(trained):
    m = trained.manifest
    cal = m.calibration
    assert set(cal["train_images"]).isdisjoint(cal["validation_images"])
    assert len(cal["train_images"]) + len(cal["validation_images"]) == 64
    assert 0 < m.postprocess.pixel_threshold == cal["pixel"]["threshold"]
    # The original model keeps the original method's map and score.
    assert (m.anomaly_map.kind, m.postprocess.score) == ("squared_error", "anomalous_fraction")
    good = cal["thresholds"]["good_validation"]
    assert good["count"] == len(cal["validation_images"])
    assert good["false_reject_rate"] <= cal["thresholds"]["targets"]["false_reject"]
    assert good["review_or_fail_rate"] <= cal["thresholds"]["targets"]["review"] + 1e-9
    assert m.thresholds.fail_at > m.thresholds.review_at
    assert len(cal["history"]["loss"]) >= 1
    agree = cal["int8_vs_float"]
    assert agree["score_correlation"] > 0.9


def test_fit_evaluates_the_test_split(trained):
    metrics = trained.metrics
    assert trained.manifest.metrics == metrics
    assert metrics["images"] == 6 + 5 * 3
    assert sum(metrics["verdicts"]["good"].values()) == 6
    assert metrics["image_auroc"] > 0.8
    assert metrics["pixel_auroc"] > 0.7
    assert 0 <= metrics["pro_auc_0.3"] <= 1
    assert set(metrics["per_defect"]) == {"extra_hole", "missing_hole", "scratch", "spot", "weld"}
    assert all(b["good"] == 6 and b["defective"] == 3 for b in metrics["per_defect"].values())
    assert metrics["int8_vs_float"]["images"] == 6 + 5 * 3


def test_fit_writes_the_report_beside_the_bundle(trained):
    assert trained.report == trained.path.with_name("flange-report")
    page = (trained.report / "report.html").read_text()
    assert json.loads((trained.report / "metrics.json").read_text()) == trained.metrics
    # Histogram, reject-escape curve, ROC/PR, training curve; heatmaps as JPEG.
    assert page.count("data:image/png;base64,") == 4
    assert page.count("data:image/jpeg;base64,") >= 8
    for heading in ("False rejects against escapes", "Per defect type", "Worst escapes"):
        assert heading in page
    assert "<td>scratch</td>" in page


@pytest.mark.parametrize("n,fraction", [(10, 0.2), (64, 0.2), (2, 0.5), (5, 0.0)])
def test_split_is_seeded_and_disjoint(n, fraction):
    train, val = split(n, fraction, seed=4)
    again = split(n, fraction, seed=4)
    assert np.array_equal(train, again[0]) and np.array_equal(val, again[1])
    assert sorted([*train, *val]) == list(range(n))
    assert len(train) >= 1 and (len(val) >= 1) == (fraction > 0)


def test_bad_fit_arguments_exit_2(tmp_path, capsys):
    assert (
        train_main(["fit", str(tmp_path), "--out", str(tmp_path / "b.lsb"), "--image-size", "100"])
        == 2
    )
    assert "multiple of 16" in capsys.readouterr().err
    assert train_main(["fit", str(tmp_path / "nope"), "--out", str(tmp_path / "b.lsb")]) == 2
    assert "no such dataset folder" in capsys.readouterr().err
    out = str(tmp_path / "b.lsb")
    assert train_main(["fit", str(tmp_path), "--out", out, "--fail-margin", "-1"]) == 2
    assert "--fail-margin: -1.0: input should be greater than or equal to 0" in (
        capsys.readouterr().err
    )


BAD_OPTIONS = {
    "min-cluster 0": (["--min-cluster", "0"], "--min-cluster: 0: input should be greater"),
    "pixel-quantile 1.5": (["--pixel-quantile", "1.5"], "--pixel-quantile: 1.5: input should be"),
    "even blur": (["--blur", "4"], "blur_ksize must be odd"),
    "val-fraction 1": (["--val-fraction", "1"], "--val-fraction: 1.0: input should be less"),
    "negative crop": (["--crop=-1,0,64,64"], "x and y must be >= 0"),
    "zero epochs": (["--epochs", "0"], "--epochs: 0: input should be greater"),
}


@pytest.mark.parametrize("flags,message", BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_bad_options_stop_before_training(synth_dir, tmp_path, capsys, flags, message):
    """On a dataset that would train, a bad option ends the command at once, in one line."""
    out = tmp_path / "never.lsb"
    assert train_main(["fit", str(synth_dir), "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lineside-train: error: ") and message in err[0]
    assert not out.exists()


def test_evaluate_cli_rescores_a_bundle_and_writes_a_report(trained, synth_dir, tmp_path, capsys):
    out = tmp_path / "again"
    code = train_main(["evaluate", str(trained.path), str(synth_dir), "--report", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "image AUROC" in printed and "false rejects" in printed
    again = json.loads((out / "metrics.json").read_text())
    # Same bundle, same images, same runtime: the same numbers as at the end of fit.
    assert again["image_auroc"] == pytest.approx(trained.metrics["image_auroc"])
    assert again["verdicts"] == trained.metrics["verdicts"]
    assert (out / "report.html").stat().st_size > 50_000


def test_evaluate_cli_refuses_data_without_a_test_split(trained, tmp_path, capsys):
    good_only = tmp_path / "good"
    good_only.mkdir()
    assert train_main(["evaluate", str(trained.path), str(good_only)]) == 2
    assert "lineside-train: error:" in capsys.readouterr().err


def test_the_default_model_learns_to_repair_synthetic_defects(synth_dir, tmp_path):
    """The denoising path end to end: pasted-defect training, map choice, int8 agreement."""
    from lineside.daemon.intake import selftest
    from lineside.daemon.runtime import load_bundle
    from lineside.trainer.fit import FitOptions, fit

    opts = FitOptions(
        model="lineside-small", image_size=64, epochs=6, seed=1, repair=True, report=tmp_path / "r"
    )
    result = fit(synth_dir, tmp_path / "d.lsb", opts, say=lambda _: None)
    m = result.manifest
    cal = m.calibration
    chosen = (m.anomaly_map.kind, m.anomaly_map.smooth_sigma, m.postprocess.score)
    table = {
        (c["map"], c["smooth_sigma"], c["score"]): c["merit"]
        for c in cal["selection"]["candidates"]
    }
    assert len(table) == 3 * 3 * 2  # three maps, three smoothing levels, two scores
    assert table[chosen] == max(table.values()) == cal["selection"]["chosen_merit"]
    assert cal["int8_vs_float"]["score_correlation"] > 0.9
    assert "image_auroc" in result.metrics and (tmp_path / "r" / "report.html").is_file()
    bundle, model = load_bundle(result.path)
    assert len(selftest.run(bundle, model)) == len(m.selftest.images)


def test_a_missing_val_defects_folder_fails_before_training(synth_dir, tmp_path, capsys):
    out = str(tmp_path / "b.lsb")
    code = train_main(
        ["fit", str(synth_dir), "--out", out, "--val-defects", str(tmp_path / "nope")]
    )
    assert code == 2
    assert "no such dataset folder" in capsys.readouterr().err
    assert not (tmp_path / "b.lsb").exists()


def test_defective_validation_images_set_review_at_by_the_escape_target(synth_dir, tmp_path):
    import shutil

    from lineside.trainer.calibrate import Targets
    from lineside.trainer.fit import FitOptions, fit

    defects = tmp_path / "val-defects"
    defects.mkdir()
    for path in sorted((synth_dir / "test").glob("[!g]*/*.png"))[:6]:
        shutil.copy(path, defects / f"{path.parent.name}-{path.name}")
    opts = FitOptions(
        model="lineside-small",
        image_size=64,
        epochs=2,
        val_defects=defects,
        targets=Targets(escape=0.0),
        report=tmp_path / "r",
    )
    result = fit(synth_dir, tmp_path / "v.lsb", opts, say=lambda _: None)
    rule = result.manifest.calibration["thresholds"]
    assert rule["defective_validation"]["count"] == 6
    # An escape target of 0: review_at at or below the lowest defective validation score.
    assert rule["defective_validation"]["escape_rate"] == 0.0
    assert "lowered to q(escape)" in rule["rule"]


def test_repair_is_opt_in():
    from lineside.trainer.cli import _parser
    from lineside.trainer.fit import FitOptions
    from lineside.trainer.pixels.fit import training_recipe

    def parsed(*extra):
        return _parser().parse_args(["fit", "data", "--out", "b.lsb", *extra]).repair

    assert (parsed(), parsed("--repair"), parsed("--no-repair")) == (False, True, False)
    plain = training_recipe(FitOptions(model="lineside"))
    assert not plain.denoising and "trained on good images only" in plain.description
    assert training_recipe(FitOptions(model="lineside", repair=True)).denoising
    original = training_recipe(FitOptions(model="original", repair=True))
    assert original == training_recipe(FitOptions(model="original"))


def test_fit_builds_the_manifest_once(synth_dir, tmp_path, monkeypatch):
    """Calibration, evaluation and the self-test score with the chosen stages; the manifest is
    made once, when everything in it is known."""
    from lineside.trainer.pixels import fit as fit_module
    from tests.conftest import FIT_SETTINGS

    made = []

    class Counted(fit_module.Manifest):
        def __init__(self, **fields):
            made.append(fields["model"].version)
            super().__init__(**fields)

    monkeypatch.setattr(fit_module, "Manifest", Counted)
    opts = fit_module.FitOptions(**{**FIT_SETTINGS, "epochs": 2})
    result = fit_module.fit(synth_dir, tmp_path / "once.lsb", opts, say=lambda _: None)
    assert made == ["t1"]
    assert result.manifest.selftest is not None and result.metrics


MB = 1024 * 1024


@pytest.mark.parametrize(
    "good_mb,bad_mb,kept",
    [
        ([0.1, 0.1, 0.1], [0.1, 0.1], ["g0", "g1", "g2", "b0", "b1"]),  # small frames: all five
        ([3.0, 3.0, 3.0], [3.0, 3.0], ["g0", "b0"]),  # 2048x1536 frames: one of each
        ([1.5, 1.0, 2.0], [1.0, 0.4], ["g0", "g1", "b0", "b1"]),  # in order, while they fit
        ([], [3.0, 3.0], ["b0"]),
        ([5.0], [], ["g0"]),  # one of each is kept even over the budget
    ],
)
def test_self_test_images_keep_one_of_each_then_what_fits(good_mb, bad_mb, kept):
    from lineside.trainer.fitting import SELFTEST_BYTES, within_selftest_budget

    assert SELFTEST_BYTES == 4 * MB
    good = [(f"g{i}", b"x" * int(mb * MB)) for i, mb in enumerate(good_mb)]
    bad = [(f"b{i}", b"x" * int(mb * MB)) for i, mb in enumerate(bad_mb)]
    assert [name for name, _ in within_selftest_budget(good, bad)] == kept
