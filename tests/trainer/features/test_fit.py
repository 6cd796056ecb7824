"""The default fit: the pretrained backbone, cut, with a Gaussian head, end to end on the box."""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest

from lineside.daemon.core.heads import AutoencoderHead, GaussianHead
from lineside.daemon.intake import selftest
from lineside.daemon.intake.bundle_store import BundleStore
from lineside.daemon.runtime import FeatureModel, ModelError, load_bundle, load_model
from lineside.deploy import bundle as bundles
from lineside.deploy import signing
from lineside.trainer.features import backbone, choice, gaussian
from lineside.trainer.options import AUTO_SCORES
from tests.support import bundles as kit


@pytest.fixture(scope="module")
def gaussian_fit(synth_dir, tmp_path_factory):
    from lineside.trainer.fit import FitOptions, fit

    out = tmp_path_factory.mktemp("gaussian") / "g.lsb"
    return fit(synth_dir, out, FitOptions(head="gaussian", version="g1"), say=lambda _: None)


@pytest.fixture(scope="module")
def autoencoder_fit(synth_dir, tmp_path_factory):
    from lineside.trainer.fit import FitOptions, fit

    out = tmp_path_factory.mktemp("autoencoder") / "a.lsb"
    return fit(synth_dir, out, FitOptions(head="autoencoder", version="a1"), say=lambda _: None)


def test_the_default_calibrates_both_heads_and_keeps_the_one_that_catches_more(feature_fit):
    m = feature_fit.manifest
    heads = m.calibration["selection"]["heads"]
    assert set(heads) == {"gaussian", "memory_bank"}
    expected = max(heads, key=lambda k: (round(heads[k]["caught"], 3), heads[k]["merit"]))
    assert m.features.head.kind == expected
    assert m.calibration["selection"]["chosen_merit"] == heads[expected]["merit"]
    # What the chosen head would pass is the complement of what it catches.
    synthetic = m.calibration["thresholds"]["synthetic_defects"]
    assert synthetic["passed"] == pytest.approx(1 - heads[expected]["caught"])
    assert set(synthetic["kinds"]) == {"scratch", "crack", "pit", "missing", "stain"}


def test_a_gaussian_bundle_is_what_the_box_runs(gaussian_fit):
    m = gaussian_fit.manifest
    assert m.family == "features" and m.output is None
    assert m.features.backbone.source_sha256 == backbone.SHA256
    assert m.features.backbone.layers == backbone.LAYERS
    assert (m.preprocess.size, m.preprocess.color, m.features.head.grid) == (
        (224, 224),
        "rgb",
        (28, 28),
    )
    assert gaussian_fit.path.stat().st_size <= 10 * 1024 * 1024
    bundle, model = load_bundle(gaussian_fit.path)
    assert isinstance(model, FeatureModel) and isinstance(model.head, GaussianHead)
    assert set(bundle.files) >= {"model.tflite", "head.npz"}
    assert len(selftest.run(bundle, model)) == len(m.selftest.images)


def test_an_autoencoder_bundle_is_what_the_box_runs(autoencoder_fit):
    m = autoencoder_fit.manifest
    assert (m.features.head.kind, m.features.head.network) == ("autoencoder", "head.tflite")
    assert "validation split" in m.calibration["thresholds"]["scores"]
    assert autoencoder_fit.path.stat().st_size <= 2 * 1024 * 1024  # no covariances to carry
    bundle, model = load_bundle(autoencoder_fit.path)
    assert isinstance(model.head, AutoencoderHead)
    assert len(selftest.run(bundle, model)) == len(m.selftest.images)
    print({k: autoencoder_fit.metrics[k] for k in ("image_auroc", "pixel_auroc")})
    assert autoencoder_fit.metrics["image_auroc"] >= 0.9


def test_the_map_is_chosen_on_validation_and_every_candidate_reported(gaussian_fit):
    cal = gaussian_fit.manifest.calibration
    table = {(c["smooth_sigma"], c["score"]): c["merit"] for c in cal["selection"]["candidates"]}
    assert len(table) == len(choice.SMOOTHING) * len(AUTO_SCORES)
    m = gaussian_fit.manifest
    chosen = (m.anomaly_map.smooth_sigma, m.postprocess.score)
    assert table[chosen] == max(table.values()) == cal["selection"]["chosen_merit"]
    assert "leave-one-out" in cal["thresholds"]["scores"]
    # Every good image, each scored by the Gaussian fitted without it; no camera copies unless
    # the line's camera is said to compress.
    good = len(cal["train_images"]) + len(cal["validation_images"])
    assert cal["thresholds"]["good_validation"]["count"] == good
    assert cal["camera"] == "as_trained" and "camera copy" not in cal["thresholds"]["scores"]


def test_a_compressing_camera_adds_a_jpeg_copy_of_every_good_image(synth_dir, tmp_path):
    from lineside.trainer.fit import FitOptions, fit

    opts = FitOptions(head="gaussian", camera="jpeg", version="j1")
    result = fit(synth_dir, tmp_path / "j.lsb", opts, say=lambda _: None)
    cal = result.manifest.calibration
    good = len(cal["train_images"]) + len(cal["validation_images"])
    assert cal["thresholds"]["good_validation"]["count"] == 2 * good
    assert "camera copy left out together" in cal["thresholds"]["scores"]


def test_the_synthetic_flanges_are_told_apart(feature_fit):
    """The demo's parts, the default model: the old pixel default reached image AUROC 0.81."""
    mx = feature_fit.metrics
    print({k: mx[k] for k in ("image_auroc", "pixel_auroc", "false_reject_rate")})
    assert mx["image_auroc"] >= 0.95
    assert mx["false_reject_rate"] <= 0.1


def test_the_gaussian_fit_finds_an_outlier_cell():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(40, 3, 3, 8)).astype(np.float32)
    head = gaussian.fit(feats, gaussian.projection(feats, 6))
    probe = rng.normal(size=(3, 3, 8)).astype(np.float32)
    probe[1, 2] += 6
    d = head.distance(probe)
    assert np.unravel_index(np.argmax(d), d.shape) == (1, 2)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _head_file(files: dict, **changes) -> None:
    with np.load(io.BytesIO(files["head.npz"])) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for name, fn in changes.items():
        arrays[name] = fn(arrays[name])
    files["head.npz"] = _npz(**arrays)


def _on_grid(rows: int):
    def cut(a):
        return a[:rows, :rows]

    def upper(a):
        return a.reshape(28, 28, -1)[:rows, :rows].reshape(rows * rows, -1)

    return {"mean": cut, "precision_int8": upper, "precision_scale": upper}


REFUSALS = [
    (
        "backbone hash",
        dict(edit_manifest=lambda m: m["features"]["backbone"].update(sha256="0" * 64)),
        "backbone SHA-256 does not match",
    ),
    (
        "head grid",
        dict(
            edit_files=lambda f: _head_file(f, **_on_grid(14)),
            edit_manifest=lambda m: m["features"]["head"].update(grid=[14, 14]),
        ),
        "does not fit the backbone's (28, 28) feature grid",
    ),
    (
        "head channels",
        dict(edit_files=lambda f: _head_file(f, projection=lambda a: a[:100])),
        "head takes 100 features per cell, the backbone gives 128",
    ),
    (
        "head not an array file",
        dict(edit_files=lambda f: f.update({"head.npz": b"not a zip"})),
        "head does not load",
    ),
    (
        "input shape",
        dict(edit_manifest=lambda m: m["input"].update(shape=[1, 64, 64, 1])),
        "the manifest says [1, 64, 64, 1]",
    ),
    (
        "self-test past its tolerance",
        dict(edit_manifest=lambda m: _shift_selftest(m, 3)),
        "by the trainer (tolerance",
    ),
    (
        "pickled head",
        dict(
            edit_files=lambda f: f.update(
                {"head.npz": _npz(mean=np.array([{"x": 1}], dtype=object))}
            )
        ),
        "head does not load",
    ),
]


def _shift_selftest(manifest: dict, tolerances: float) -> None:
    st = manifest["selftest"]
    for image in st["images"]:
        image["score"] += tolerances * st["tolerance"]


@pytest.mark.parametrize(("case", "changes", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_feature_bundle_that_does_not_fit_is_refused_with_a_reason(
    gaussian_fit, tmp_path, case, changes, reason
):
    private, public = signing.generate(tmp_path / "keys", "maintenance")
    key = signing.load_private(private)
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / public.name).write_bytes(public.read_bytes())
    store = BundleStore(tmp_path / "store", trusted, 64 * 1024 * 1024, 1)
    good = kit.repack(gaussian_fit.path.read_bytes(), key)
    store.vet(good)  # the unchanged bundle passes every check
    bad = kit.repack(good, key, **changes)
    with pytest.raises(ModelError, match=re.escape(reason)):
        store.vet(bad)


def test_the_head_is_stored_as_float16_and_int8_arrays(gaussian_fit):
    with zipfile.ZipFile(gaussian_fit.path) as zf, np.load(io.BytesIO(zf.read("head.npz"))) as npz:
        dtypes = {k: npz[k].dtype for k in npz.files}
    assert dtypes == {
        "projection": np.float16,
        "mean": np.float16,
        "precision_int8": np.int8,
        "precision_scale": np.float32,
    }
    assert bundles.read(gaussian_fit.path).manifest.features.head.dims == gaussian.DIMS


def test_an_autoencoder_network_that_does_not_fit_the_grid_is_refused(autoencoder_fit, bundle_path):
    wrong = bundles.read(bundle_path).model_bytes  # a pixel autoencoder: takes images
    data = kit.repack(
        autoencoder_fit.path.read_bytes(),
        edit_files=lambda f: f.update({"head.tflite": wrong}),
    )
    with pytest.raises(ModelError, match=re.escape("head network takes [1, 128, 128, 1]")):
        load_model(bundles.parse(data))


def test_the_report_shows_every_head_the_fit_tried(feature_fit):
    page = (feature_fit.report / "report.html").read_text()
    assert "Head chosen on validation" in page
    for head, h in feature_fit.manifest.calibration["selection"]["heads"].items():
        assert f"<td>{head}</td><td>{h['caught']:.1%}</td><td>{h['merit']:.3f}</td>" in page
    assert "Synthetic defects the thresholds would pass" in page


def test_a_compressing_source_on_a_bundle_fitted_without_saying_so_is_warned(feature_fit):
    from lineside.daemon.service.lifecycle import camera_warning

    stated = feature_fit.manifest  # fitted with --camera jpeg
    assert camera_warning("stream", stated) is None
    cal = {**stated.calibration, "camera": "as_trained"}
    unstated = stated.model_copy(update={"calibration": cal})
    line = camera_warning("video", unstated)
    assert line is not None and "--camera jpeg" in line
    assert camera_warning("folder", unstated) is None and camera_warning("device", unstated) is None
