"""Quality floors on real parts: a reduced training run on the public datasets in ../shared.

The full-size numbers are in docs/quality.md; these runs are small enough for CI (small model,
small images, few epochs) and still fail when the trainer or the pipeline regresses.
"""

from __future__ import annotations

import pytest

from tests.conftest import shared_dataset

# (dataset, fit settings, image AUROC floor, pixel AUROC floor)
CASES = {
    "mvtec-bottle": (
        dict(model="lineside-small", image_size=64, epochs=15, batch_size=16),
        0.93,  # measured 0.979
        0.85,  # measured 0.916
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reduced_training_on_real_parts_clears_the_floor(name, tmp_path):
    from lineside.trainer.fit import FitOptions, fit

    settings, image_floor, pixel_floor = CASES[name]
    data = shared_dataset(name)
    result = fit(data, tmp_path / "real.lsb", FitOptions(**settings, seed=0), say=print)
    m = result.metrics
    print({k: m[k] for k in ("image_auroc", "pixel_auroc", "pro_auc_0.3")})
    assert m["image_auroc"] >= image_floor
    assert m["pixel_auroc"] >= pixel_floor
    assert abs(m["int8_vs_float"]["auroc_difference"]) <= 0.02
    assert (result.report / "report.html").is_file()
