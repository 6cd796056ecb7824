"""Thresholds from validation scores and stated targets; the map choice by validation."""

from __future__ import annotations

import numpy as np
import pytest

from lineside.trainer.calibrate import Candidates, Targets, choose, image_thresholds


def test_thresholds_meet_their_targets_on_validation():
    good = np.random.default_rng(0).gamma(4.0, 0.01, 400)
    t, report = image_thresholds(good, Targets(false_reject=0.005, review=0.05))
    assert np.mean(good > t.fail_at) <= 0.005
    assert np.mean(good > t.review_at) <= 0.05
    assert t.fail_at > np.quantile(good, 0.995)  # the margin for a small validation set
    assert report["good_validation"]["false_reject_rate"] == np.mean(good > t.fail_at)


def test_small_validation_sets_fall_back_to_the_highest_score_plus_margin():
    good = np.array([0.1, 0.2, 0.2, 0.3, 0.4])
    t, _ = image_thresholds(good, Targets(false_reject=0.005, review=0.05, fail_margin=0.5))
    assert t.review_at == 0.4
    assert t.fail_at == pytest.approx(0.4 + 0.5 * (0.4 - 0.2))


def test_defective_validation_lowers_review_at_to_meet_the_escape_target():
    good = np.linspace(0.0, 1.0, 101)
    defective = np.linspace(0.5, 3.0, 100)
    t, report = image_thresholds(good, Targets(review=0.01, escape=0.05), defective)
    assert np.mean(defective <= t.review_at) <= 0.05 + 1e-9
    assert t.review_at < np.quantile(good, 0.99)
    assert report["defective_validation"]["escape_rate"] <= 0.05 + 1e-9


def test_a_floor_keeps_fail_at_above_review_at():
    good = np.zeros(20)  # a pixel-count score where no good part has a cluster
    t, _ = image_thresholds(good, Targets(), floor=0.001)
    assert (t.review_at, t.fail_at) == (0.0, 0.001)


def _pairs(rng, n, defect):
    xs = rng.random((n, 32, 32, 1), np.float32) * 0.1 + 0.4
    recons = xs.copy()
    masks = np.zeros((n, 32, 32), bool)
    if defect:  # the reconstruction misses a fine-textured patch: structure, not level
        patch = rng.random((n, 6, 6, 1), np.float32)
        xs[:, 10:16, 10:16] = patch
        recons[:, 10:16, 10:16] = patch.mean()
        masks[:, 10:16, 10:16] = True
    return (xs, recons), masks


def test_choose_picks_the_candidate_that_finds_the_defects_and_records_all():
    rng = np.random.default_rng(4)
    (good, _), (bad, masks) = _pairs(rng, 12, False), _pairs(rng, 12, True)
    cands = Candidates(("squared_error", "ssim"), ("map_max",))
    choice, table = choose(good, bad, masks, cands, 0.999, 5)
    assert len(table) == 2 * 3  # two kinds, three smoothing levels, one score
    assert choice.merit == max(row["merit"] for row in table)
    for row in table:
        assert row["merit"] == pytest.approx((row["image_auroc"] + row["pixel_auroc"]) / 2)
    best = max(table, key=lambda r: r["merit"])
    assert (choice.spec.kind, choice.spec.smooth_sigma) == (best["map"], best["smooth_sigma"])
    assert best["image_auroc"] == 1.0 and best["pixel_auroc"] > 0.95
    assert choice.pixel_threshold > 0


def test_the_original_model_keeps_the_original_method_unless_told():
    from lineside.trainer.fit import FitOptions
    from lineside.trainer.pixels.fit import candidates

    assert candidates(FitOptions(model="original")) == Candidates(
        ("squared_error",), ("anomalous_fraction",), (0.0,)
    )
    told = candidates(FitOptions(model="original", anomaly_map="ssim"))
    assert told.kinds == ("ssim",) and told.smoothing == (0.0, 2.0, 4.0)
    default = candidates(FitOptions(model="lineside"))
    assert default.kinds == ("squared_error", "ssim", "blend")
    assert default.scores == ("map_max", "top_k_mean")


def test_review_at_never_goes_below_zero():
    good = np.zeros(10)
    t, report = image_thresholds(good, Targets(escape=0.0), defective=np.array([0.0, 0.5]))
    assert t.review_at == 0.0
    assert report["defective_validation"]["escape_rate"] == 0.5  # the score-0 part still passes


def test_too_few_good_images_to_calibrate_are_said_loudly_with_the_number_needed():
    from lineside.trainer.calibrate import too_few
    from lineside.trainer.options import Targets

    lines = too_few(3, Targets())
    assert any("WARNING: 3 good images are too few" in line for line in lines)
    assert any("needs at least 20" in line and "needs 200" in line for line in lines)
    assert too_few(50, Targets())[0].startswith("note: 50 good images place review_at")
    assert too_few(200, Targets()) == []
