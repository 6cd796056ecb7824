"""An independent Sparkplug B decoder for tests: the Tahu .proto compiled here by protoc into a
descriptor pool of its own, so nothing of the daemon's generated module is used to check it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PROTO = Path(__file__).resolve().parents[2] / "daemon" / "sinks" / "sparkplug_b.proto"


def payload_class(workdir: Path):
    """The Payload message class, compiled from the .proto with grpcio-tools' protoc."""
    out = workdir / "sparkplug_b.desc"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={PROTO.parent}",
            f"--descriptor_set_out={out}",
            PROTO.name,
        ],
        check=True,
        capture_output=True,
    )
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in files.file:
        pool.Add(f)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("org.eclipse.tahu.protobuf.Payload")
    )


@dataclass(frozen=True)
class Decoded:
    kind: str  # NBIRTH, DDATA, ...
    node: str
    device: str | None
    payload: object  # a Payload message

    def metric(self, name: str):
        return next(m for m in self.payload.metrics if m.name == name)


def decode(payload_cls, topic: str, data: bytes) -> Decoded:
    parts = topic.split("/")
    assert parts[0] == "spBv1.0", topic
    return Decoded(
        parts[2], parts[3], parts[4] if len(parts) > 4 else None, payload_cls.FromString(data)
    )


def value_of(metric):
    field = metric.WhichOneof("value")
    return None if field is None else getattr(metric, field)
