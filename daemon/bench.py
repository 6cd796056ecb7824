"""`lineside-daemon bench`: how fast this box runs a bundle, stage by stage.

Runs the real pipeline with the capture thread running (so it competes for the CPU as it does
in service), and reports median and p95 milliseconds per stage, end-to-end and model-only frames
per second, the pipeline's overhead as a share of inference, resident memory and the model's
multiply-accumulate rate. Without `--source` it plays the bundle's own self-test images.
"""

from __future__ import annotations

import contextlib
import json
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from lineside.daemon.capture.camera import Camera
from lineside.daemon.capture.image_files import VIDEO_SUFFIXES
from lineside.daemon.config import Heatmap, Source
from lineside.daemon.core.pipeline import inspect_frame
from lineside.daemon.core.preprocess import preprocess
from lineside.daemon.runtime import load_bundle
from lineside.daemon.sinks import mqtt_topics
from lineside.daemon.transport.outbox import Outbox, Writer

# Work on the frame thread besides inference; heatmaps are rate-limited, so listed apart.
FRAME_PATH = ("preprocess", "anomaly_map", "denoise", "regions", "verdict", "publish")


def source_for(spec: str | None, bundle, tmp: Path, capture_fps: float) -> Source:
    if spec is None:
        if not bundle.manifest.selftest:
            raise ValueError("this bundle has no self-test images: give --source")
        for image in bundle.manifest.selftest.images:
            (tmp / Path(image.file).name).write_bytes(bundle.files[image.file])
        return Source(kind="folder", path=tmp, loop=True, fps=capture_fps)
    if spec.isdigit():
        return Source(kind="device", device=int(spec))
    if "://" in spec:
        return Source(kind="stream", url=spec)
    path = Path(spec)
    kind = "video" if path.suffix.lower() in VIDEO_SUFFIXES else "folder"
    return Source(kind=kind, path=path, loop=True, fps=capture_fps)


def _stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values) if values else np.zeros(1)
    return {"median": round(float(np.median(a)), 3), "p95": round(float(np.percentile(a, 95)), 3)}


def run(
    bundle_path: Path,
    source: str | None,
    frames: int,
    threads: int | None,
    capture_fps: float = 60.0,
    warmup: int = 10,
) -> dict:
    bundle, model = load_bundle(bundle_path, num_threads=threads)
    m = bundle.manifest
    heatmaps = mqtt_topics.HeatmapPolicy(Heatmap())
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        camera = Camera(source_for(source, bundle, Path(tmp), capture_fps))
        camera.start()
        stack.callback(camera.stop)
        outbox = Outbox(Path(tmp) / "bench-outbox.db", max_rows=1000, max_bytes=50_000_000)
        stack.callback(outbox.close)
        writer = Writer(outbox, on_written=lambda: None)
        stack.callback(writer.close)
        laps: dict[str, list[float]] = {}
        done, started = 0, 0.0
        while done < frames + warmup:
            frame = camera.next_frame(timeout=10)
            if frame is None:
                raise RuntimeError(f"the source gave no frame (camera {camera.state})")
            if done == warmup:
                started, dropped0 = time.perf_counter(), camera.dropped
            insp = inspect_frame(frame.image, m, model.infer)
            t0 = time.perf_counter()
            payload = mqtt_topics.inspection_payload(insp, done, frame, None, bundle, "bench")
            writer.put([("bench/inspection", payload, 1, False)])
            t1 = time.perf_counter()
            heatmaps.encode(frame.image, insp, m.postprocess.pixel_threshold)
            t2 = time.perf_counter()
            if done >= warmup:
                for stage, ms in insp.latency_ms.items():
                    laps.setdefault(stage, []).append(ms)
                laps.setdefault("publish", []).append((t1 - t0) * 1000)
                laps.setdefault("heatmap_encode", []).append((t2 - t1) * 1000)
            done += 1
        elapsed = time.perf_counter() - started
        dropped = camera.dropped - dropped0
        decode = list(camera.decode_ms)
        x = preprocess(frame.image, m.preprocess)
    model_only = _model_only(model, x, frames)
    stages = {"capture_decode": _stats(decode)} | {k: _stats(v) for k, v in laps.items()}
    inference = stages["inference"]["median"]
    overhead = sum(stages[s]["median"] for s in FRAME_PATH if s in stages)
    fps = frames / elapsed
    macs = m.model.macs
    return {
        "bundle": f"{m.model.name} {m.model.version}",
        "threads": model.threads,
        "frames": frames,
        "stages_ms": stages,
        "end_to_end_fps": round(fps, 1),
        "model_only_fps": round(1000 / model_only, 1),
        "overhead_ratio": round(overhead / inference, 3),
        "frames_dropped_by_capture": dropped,
        "resident_mb": _rss_mb(),
        "macs_per_frame": macs,
        "gmacs_per_s": round(macs * 1000 / model_only / 1e9, 2) if macs else None,
    }


def _model_only(model, x: np.ndarray, n: int) -> float:
    """Median milliseconds of the model call alone."""
    times = []
    for _ in range(max(n, 20)):
        t0 = time.perf_counter()
        model.infer(x)
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def table(r: dict) -> str:
    lines = [
        f"bundle {r['bundle']}, {r['threads']} thread(s), {r['frames']} frames",
        f"{'stage':<16}{'median ms':>10}{'p95 ms':>10}",
    ]
    for stage, s in r["stages_ms"].items():
        lines.append(f"{stage:<16}{s['median']:>10.3f}{s['p95']:>10.3f}")
    macs = f"{r['macs_per_frame'] / 1e6:.0f} M" if r["macs_per_frame"] else "unknown"
    rate = f", {r['gmacs_per_s']} GMAC/s achieved" if r["gmacs_per_s"] else ""
    lines += [
        f"end-to-end        {r['end_to_end_fps']} frames/s (capture thread running; "
        f"{r['frames_dropped_by_capture']} frames replaced before use)",
        f"model only        {r['model_only_fps']} frames/s",
        f"overhead          {r['overhead_ratio']:.1%} of inference ({' + '.join(FRAME_PATH)})",
        f"resident memory   {r['resident_mb']} MB",
        f"model             {macs} MACs per frame{rate}",
    ]
    return "\n".join(lines)


def plc(
    bundle_path: Path,
    source: str | None,
    parts: int,
    threads: int | None,
    capture_fps: float = 60.0,
    deadline_ms: float = 1000.0,
) -> dict:
    """A PLC on loopback (pymodbus's client) triggers `parts` parts one after another over
    Modbus TCP; each is inspected on the next fresh frame and answered as the daemon does.
    Trigger-to-answer is timed on both sides: the link's (trigger taken to result registers
    set) and the PLC's (trigger written to result_ready read, polled every millisecond)."""
    from lineside.daemon.capture.triggers import OnCommand
    from lineside.daemon.config import Plc
    from lineside.daemon.sinks import Result
    from lineside.daemon.sinks.modbus import ModbusServer
    from lineside.daemon.sinks.plc import percentiles

    bundle, model = load_bundle(bundle_path, num_threads=threads)
    m = bundle.manifest
    turn, stop = OnCommand(), threading.Event()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        camera = Camera(source_for(source, bundle, Path(tmp), capture_fps))
        camera.start()
        stack.callback(camera.stop)
        cfg = Plc(port=_free_port(), deadline_ms=deadline_ms)
        server = ModbusServer(cfg, turn, lambda: {"camera_online": True, "model": m.model.name})
        server.start()
        stack.callback(server.close)

        def line() -> None:  # the station's frame loop, as `run` inspects a request
            seq = 0
            while not stop.is_set():
                req = turn.wait(stop, 0.1)
                if req is None:
                    continue
                frame = camera.next_frame(timeout=deadline_ms / 1000, newer_than=req.at)
                if frame is None:
                    continue  # the link answers it at its deadline: rejected
                seq += 1
                insp = inspect_frame(frame.image, m, model.infer)
                server.publish(Result(seq, frame, insp, req.part_id, bundle, "bench", req.id))

        worker = threading.Thread(target=line, name="bench-line", daemon=True)
        worker.start()
        stack.callback(worker.join, 5)
        stack.callback(stop.set)
        round_trips = _plc_parts(cfg.port, parts)
        link = server.stats()
    return {
        "bundle": f"{m.model.name} {m.model.version}",
        "threads": model.threads,
        "parts": parts,
        "answered": link["answered"],
        "no_answer": link["no_answer"],
        "deadline_ms": deadline_ms,
        "trigger_to_answer_ms": link["trigger_to_answer_ms"],
        "plc_round_trip_ms": percentiles(round_trips),
    }


def _plc_parts(port: int, parts: int) -> list[float]:
    from pymodbus.client import ModbusTcpClient

    from lineside.daemon.sinks import modbus

    client = ModbusTcpClient("127.0.0.1", port=port, timeout=5)
    if not client.connect():
        raise RuntimeError(f"no Modbus server on 127.0.0.1:{port}")
    took = []
    try:
        for n in range(parts):
            client.write_registers(modbus.PART_ID, modbus.words(n + 1))
            t0 = time.perf_counter()
            while client.write_coil(modbus.TRIGGER, True).isError():  # busy: the last part
                t0 = time.perf_counter()
            while not client.read_discrete_inputs(modbus.RESULT_READY, count=1).bits[0]:
                time.sleep(0.001)
            took.append((time.perf_counter() - t0) * 1000)
    finally:
        client.close()
    return took


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plc_table(r: dict) -> str:
    link, plc_side = r["trigger_to_answer_ms"], r["plc_round_trip_ms"]
    return "\n".join(
        [
            f"bundle {r['bundle']}, {r['threads']} thread(s), {r['parts']} parts over Modbus TCP",
            f"answered {r['answered']}, no answer within {r['deadline_ms']:g} ms {r['no_answer']}",
            f"{'':<30}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}",
            f"{'trigger to result registers':<30}{link['p50']:>9}{link['p99']:>9}{link['max']:>9}",
            f"{'PLC: trigger to result_ready':<30}"
            f"{plc_side['p50']:>9}{plc_side['p99']:>9}{plc_side['max']:>9}",
        ]
    )


def to_json(r: dict) -> str:
    return json.dumps(r, indent=2)
