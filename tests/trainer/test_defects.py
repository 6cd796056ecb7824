"""Synthetic defects of the kinds real parts show: on the part only, at every size."""

from __future__ import annotations

import numpy as np
import pytest

from lineside.trainer import defects


def _part(size=224):
    rng = np.random.default_rng(0)
    x = np.full((size, size, 3), 0.5, np.float32) + rng.normal(0, 0.02, (size, size, 3))
    return np.clip(x, 0, 1).astype(np.float32)


@pytest.mark.parametrize(("kind", "size"), defects.VARIANTS)
def test_each_variant_marks_what_it_changed_and_only_on_the_part(kind, size):
    x = _part()
    on_part = np.zeros(x.shape[:2], bool)
    on_part[:, :150] = True  # the rest is a letterbox bar
    out, mask = defects.paint(np.random.default_rng(1), x, kind, size, on_part)
    assert out.shape == x.shape and out.dtype == np.float32
    assert mask.any() and not mask[:, 150:].any()
    np.testing.assert_array_equal(out[:, 150:], x[:, 150:])
    changed = np.abs(out - x).max(axis=-1) > 0.02
    assert changed[mask].mean() > 0.5, "the mask covers pixels the defect changed"


def test_larger_sizes_cover_more_of_the_part():
    x, on_part = _part(), np.ones((224, 224), bool)
    for kind in ("pit", "missing", "stain", "scratch"):
        areas = [
            np.mean(
                [
                    defects.paint(np.random.default_rng(s), x, kind, size, on_part)[1].sum()
                    for s in range(5)
                ]
            )
            for size in defects.SIZES
        ]
        assert areas[0] < areas[1] < areas[2], (kind, areas)


def test_every_variant_and_the_mixed_set_are_reproducible():
    x = _part(64)
    on = np.ones((64, 64), bool)
    a, b = defects.every_variant(x, 3, on), defects.every_variant(x, 3, on)
    assert a.shape == (len(defects.VARIANTS), 64, 64, 3)
    np.testing.assert_array_equal(a, b)
    _, masks, labels = defects.mixed(np.stack([x] * 4), 5, np.stack([on] * 4))
    assert labels == list(defects.VARIANTS[:4]) and masks.shape == (4, 64, 64)
