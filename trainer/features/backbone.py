"""The pretrained int8 backbone: the shipped MobileNetV2, checked, and cut to the layers in use.

The box never sees the original file: the trainer cuts the graph down to the operators the
chosen feature maps depend on, makes those maps the model's outputs, drops the weights nobody
reads, and the cut model travels in the bundle.
"""

from __future__ import annotations

import hashlib
from importlib import resources

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

FILE = "mobilenet_v2_1.0_224_quant.tflite"
LICENSE = "LICENSE-google-coral-test_data"
SHA256 = "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776"
SOURCE = (
    "MobileNetV2 1.0 224 (ImageNet), uint8, from google-coral/test_data at "
    "104342d2d3480b3e66203073dac24f4e2dbb4c41, Apache-2.0"
)
# Feature maps in use: MobilenetV2/expanded_conv_5/add (stride 8, 32 channels) and
# MobilenetV2/expanded_conv_12/add (stride 16, 96 channels). Shallow and middle layers keep
# small defects in view; deeper ones add context but blur a scratch into its neighbourhood.
LAYERS = ("MobilenetV2/expanded_conv_5/add", "MobilenetV2/expanded_conv_12/add")
STRIDES = (8, 16)


class BackboneError(Exception):
    """The shipped backbone is missing or altered; one line for a person."""


def original() -> bytes:
    """The shipped backbone file, refused if its SHA-256 is not the published one."""
    path = resources.files("lineside.trainer") / "backbones" / FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BackboneError(f"backbone {FILE} is missing from the package: {exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise BackboneError(f"backbone {FILE} has SHA-256 {digest}, expected {SHA256}")
    return data


def cut(model_bytes: bytes, layers: tuple[str, ...] = LAYERS) -> bytes:
    """The model reduced to what `layers` depend on, with those tensors as its outputs."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))
    graph = model.subgraphs[0]
    names = [t.name.decode() for t in graph.tensors]
    missing = [n for n in layers if n not in names]
    if missing:
        raise BackboneError(f"backbone has no tensor {missing[0]!r}")
    outputs = [names.index(n) for n in layers]
    ops = _needed_ops(graph, outputs)
    _keep(model, graph, ops, outputs)
    builder = flatbuffers.Builder(len(model_bytes))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _needed_ops(graph, outputs: list[int]) -> list[int]:
    """Indices of the operators the outputs depend on, in their original (topological) order."""
    producer = {t: i for i, op in enumerate(graph.operators) for t in op.outputs}
    needed, todo = set(), list(outputs)
    while todo:
        op = producer.get(todo.pop())
        if op is None or op in needed:
            continue
        needed.add(op)
        todo.extend(int(t) for t in graph.operators[op].inputs if t >= 0)
    return sorted(needed)


def _keep(model, graph, ops: list[int], outputs: list[int]) -> None:
    """Rewrite model and graph in place to hold only `ops` and the tensors and buffers they use."""
    kept_ops = [graph.operators[i] for i in ops]
    used = sorted(
        {int(t) for op in kept_ops for t in (*op.inputs, *op.outputs) if t >= 0}
        | {int(t) for t in graph.inputs}
    )
    tensor_map = {old: new for new, old in enumerate(used)}
    # Buffer 0 is the empty sentinel every schema reader expects first.
    buffers = [0, *sorted({graph.tensors[t].buffer for t in used} - {0})]
    buffer_map = {old: new for new, old in enumerate(buffers)}
    for op in kept_ops:
        op.inputs = [tensor_map[int(t)] if t >= 0 else -1 for t in op.inputs]
        op.outputs = [tensor_map[int(t)] for t in op.outputs]
    tensors = [graph.tensors[t] for t in used]
    for t in tensors:
        t.buffer = buffer_map[t.buffer]
    graph.operators, graph.tensors = kept_ops, tensors
    graph.inputs = [tensor_map[int(t)] for t in graph.inputs]
    graph.outputs = [tensor_map[t] for t in outputs]
    model.buffers = [model.buffers[b] for b in buffers]
    # Metadata and signatures point at buffers and tensors of the full graph.
    model.metadata, model.signatureDefs, model.metadataBuffer = None, None, None
    model.description = b"Lineside feature extractor: " + SOURCE.encode()
