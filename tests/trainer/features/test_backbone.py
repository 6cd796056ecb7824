"""The shipped backbone: checked at load, cut to the layers in use, identical where it runs."""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from lineside.trainer.features import backbone


def _run(model: bytes, x: np.ndarray, **kw) -> Interpreter:
    interp = Interpreter(model_content=model, num_threads=2, **kw)
    inp = interp.get_input_details()[0]["index"]
    interp.resize_tensor_input(inp, list(x.shape))
    interp.allocate_tensors()
    interp.set_tensor(inp, x)
    interp.invoke()
    return interp


def test_the_original_is_shipped_with_its_license_and_hash():
    from importlib import resources

    data = backbone.original()
    assert len(data) == 3_610_798
    folder = resources.files("lineside.trainer") / "backbones"
    assert "Apache License" in (folder / backbone.LICENSE).read_text()


def test_an_altered_backbone_is_refused(monkeypatch):
    monkeypatch.setattr(backbone, "SHA256", "0" * 64)
    with pytest.raises(backbone.BackboneError, match="SHA-256"):
        backbone.original()


def test_the_cut_graph_gives_the_full_graphs_tensors_bit_for_bit():
    full = backbone.original()
    cut = backbone.cut(full)
    assert len(cut) < len(full) / 4  # the unused layers' weights are gone too
    x = np.random.default_rng(0).integers(0, 256, (1, 224, 224, 3), dtype=np.uint8)
    small = _run(cut, x)
    outs = small.get_output_details()
    assert [o["name"] for o in outs] == list(backbone.LAYERS)
    reference = _run(full, x, experimental_preserve_all_tensors=True)
    names = {d["name"]: d["index"] for d in reference.get_tensor_details()}
    for o in outs:
        assert np.array_equal(small.get_tensor(o["index"]), reference.get_tensor(names[o["name"]]))


@pytest.mark.parametrize(("h", "w"), [(224, 576), (160, 160), (320, 224)])
def test_the_cut_graph_takes_any_input_size(h, w):
    interp = _run(backbone.cut(backbone.original()), np.zeros((1, h, w, 3), np.uint8))
    shapes = [tuple(interp.get_tensor(o["index"]).shape) for o in interp.get_output_details()]
    assert shapes == [
        (1, h // s, w // s, c) for s, c in zip(backbone.STRIDES, (32, 96), strict=True)
    ]


def test_an_unknown_layer_is_named():
    with pytest.raises(backbone.BackboneError, match="no tensor 'nope'"):
        backbone.cut(backbone.original(), ("nope",))
