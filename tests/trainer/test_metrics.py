"""Quality metrics on hand-made cases whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from lineside.trainer import metrics as m


def _masks() -> np.ndarray:
    masks = np.zeros((4, 32, 32), bool)
    masks[1, 4:12, 4:12] = True  # a large defect
    masks[2, 20:22, 20:22] = True  # a small one
    masks[2, 2:6, 25:29] = True  # a second region in the same image
    return masks


def test_a_map_that_marks_every_defect_scores_one():
    masks = _masks()
    rng = np.random.default_rng(0)
    maps = masks + 0.5 * rng.random(masks.shape)
    assert m.pixel_auroc(maps, masks) == pytest.approx(1.0)
    assert m.pro_auc(maps, masks) == pytest.approx(1.0, abs=0.01)


def test_random_maps_score_about_chance():
    masks = np.zeros((40, 32, 32), bool)
    masks[::2, 5:15, 5:15] = True
    maps = np.random.default_rng(1).random(masks.shape)
    assert m.pixel_auroc(maps, masks) == pytest.approx(0.5, abs=0.02)
    # Chance PRO grows like the false-positive rate: area 0.15 on [0, 0.3], normalized 0.15.
    assert m.pro_auc(maps, masks) == pytest.approx(0.15, abs=0.03)


def test_pro_weighs_each_region_alike():
    """Finding only the large region covers most defect pixels, but only half of the regions."""
    masks = np.zeros((2, 32, 32), bool)
    masks[0, 0:16, 0:16] = True  # 256 px
    masks[1, 0:2, 0:2] = True  # 4 px
    maps = np.zeros(masks.shape)
    maps[0, 0:16, 0:16] = 1.0
    assert m.pixel_auroc(maps, masks) > 0.95
    # PRO is 0.5 at every threshold that flags nothing outside the large region, then rises
    # linearly to (fpr 1, PRO 1), where every pixel is flagged: 0.5 -> 0.65 over [0, 0.3].
    assert m.pro_auc(maps, masks) == pytest.approx(0.575)


def test_image_metrics_and_missing_classes():
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.6, 0.5, 0.9])
    assert m.image_auroc(labels, scores) == pytest.approx(5 / 6)
    assert 0 < m.average_precision(labels, scores) <= 1
    assert m.image_auroc(np.zeros(3), np.arange(3)) is None
    assert m.pixel_auroc(np.zeros((1, 4, 4)), np.zeros((1, 4, 4), bool)) is None
    assert m.pro_auc(np.zeros((1, 4, 4)), np.zeros((1, 4, 4), bool)) is None


def test_reject_escape_curve_counts_parts():
    labels = np.array([0, 0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.5, 0.8])
    ts, frr, escape = m.reject_escape_curve(labels, scores)
    at = {round(t, 2): (f, e) for t, f, e in zip(ts, frr, escape, strict=True)}
    assert at[0.3] == (0.25, 0.0)  # one good part above 0.3, no defective part at or below it
    assert at[0.5] == (0.25, 0.5)
    assert at[0.8] == (0.0, 1.0)
    assert frr[0] == 1.0 and escape[0] == 0.0  # below every score: all rejected, none escape


def test_cpk_upper():
    scores = np.random.default_rng(2).normal(1.0, 0.1, 10_000)
    cpk = m.cpk_upper(scores, 1.6)
    assert cpk["cpk"] == pytest.approx(2.0, abs=0.05)
    assert abs(cpk["skewness"]) < 0.1
    skewed = np.random.default_rng(3).exponential(1.0, 10_000)
    assert m.cpk_upper(skewed, 5.0)["skewness"] > 1.5
    assert m.cpk_upper(np.ones(5), 2.0) is None


def test_pixel_auroc_of_a_large_split_is_binned_within_a_hair_of_exact():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    maps = rng.random((90, 224, 224)).astype(np.float32)
    masks = np.zeros(maps.shape, bool)
    masks[:, 100:120, 100:130] = True
    maps[masks] += 0.3 * rng.random(int(masks.sum()))
    assert maps.size > m.EXACT_PIXELS
    exact = roc_auc_score(masks.ravel(), maps.ravel())
    assert m.pixel_auroc(maps, masks) == pytest.approx(exact, abs=1e-4)
    valid = np.ones(maps.shape, bool)
    valid[:, :, :20] = False
    exact = roc_auc_score(masks[valid], maps[valid])
    assert m.pixel_auroc(maps, masks, valid) == pytest.approx(exact, abs=1e-4)


def test_defects_caught_with_a_share_of_good_parts_held_back():
    labels = np.r_[np.zeros(20), np.ones(10)].astype(bool)
    good = np.arange(20, dtype=float)  # 0..19
    bad = np.array([19.5, 18.5, 17.5, 16.5, 3, 3, 3, 3, 3, 25])
    caught = m.caught_at_held_back(labels, np.r_[good, bad])
    # 5% of 20 good parts is one: above 18 is held back, so 19.5, 18.5 and 25 are caught.
    assert caught["5%"] == pytest.approx(0.3)
    # 10%: two good parts, above 17: one more.
    assert caught["10%"] == pytest.approx(0.4)
    assert caught["1%"] == pytest.approx(0.2)  # nothing good held back: above 19
    assert m.caught_at_held_back(np.zeros(3, bool), np.arange(3.0)) is None
