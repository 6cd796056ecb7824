"""Names shared by the manifest, the pipeline, the trainer and the command lines agree."""

from __future__ import annotations

import contextlib
import io
import typing

import pytest

from lineside.daemon.core import anomaly_map
from lineside.daemon.core.score import SCORES
from lineside.deploy import manifest
from lineside.trainer import cli as train_cli
from lineside.trainer.options import ARCHITECTURES, AUTO, FEATURES, MODELS, FitOptions


def _choices(flag: str) -> list[str]:
    """The choices `lineside-train fit` offers for `flag`, as its usage error lists them."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit):
        train_cli.main(["fit", "data", "--out", "x.lsb", flag, "no-such-choice"])
    listed = err.getvalue().split("(choose from ")[1].split(")")[0]
    return [c.strip(" '") for c in listed.split(",")]


def test_map_kinds_agree():
    assert tuple(anomaly_map.RAW_MAPS) == manifest.MAP_KINDS  # each kind has its map
    assert typing.get_args(manifest.AnomalyMap.model_fields["kind"].annotation) == (
        *manifest.MAP_KINDS,
        manifest.FEATURE_MAP,
    )
    assert _choices("--map") == [AUTO, *manifest.MAP_KINDS]
    assert typing.get_args(FitOptions.model_fields["anomaly_map"].annotation) == (
        AUTO,
        *manifest.MAP_KINDS,
    )


def test_scores_agree():
    assert tuple(SCORES) == manifest.SCORE_NAMES
    annotation = manifest.Postprocess.model_fields["score"].annotation
    assert typing.get_args(annotation) == manifest.SCORE_NAMES
    assert _choices("--score") == [AUTO, *manifest.SCORE_NAMES]


def test_architectures_agree():
    assert typing.get_args(FitOptions.model_fields["model"].annotation) == MODELS
    assert (FEATURES, *ARCHITECTURES) == MODELS
    assert _choices("--model") == list(MODELS)


def test_the_scores_auto_chooses_among_are_scores_the_box_computes():
    from lineside.trainer.options import AUTO_SCORES

    assert set(AUTO_SCORES) <= set(manifest.SCORE_NAMES) <= set(SCORES)


def test_head_names_agree():
    """One list of head names: the manifest's; the trainer fits, and the box reads, each of them."""
    from lineside.daemon import runtime
    from lineside.trainer.features import heads

    assert tuple(heads.HEADS) == manifest.HEAD_KINDS
    assert tuple(runtime.HEADS) == manifest.HEAD_KINDS
    assert set(heads.AUTO_HEADS) <= set(manifest.HEAD_KINDS)
    assert typing.get_args(manifest.Head.model_fields["kind"].annotation) == manifest.HEAD_KINDS
    assert _choices("--head") == [AUTO, *manifest.HEAD_KINDS]


def test_every_model_family_has_its_fit():
    from lineside.trainer import fit

    assert set(fit.FAMILIES) == set(MODELS)
