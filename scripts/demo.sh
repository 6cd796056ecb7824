#!/usr/bin/env bash
# The main job end to end on the embedded synthetic part: set up, generate a dataset, train,
# export int8, calibrate, evaluate (with an HTML report), inspect the held-out test images with the daemon, then run the
# daemon as a service on a video of parts, publishing to an embedded MQTT broker.
# Everything lands in out/demo/. No camera and no external broker needed.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=out/demo
started=$(date +%s)

echo "== set-up (.venv)"
bash scripts/setup.sh

echo "== synthetic flange dataset -> $OUT/data"
rm -rf "$OUT"
.venv/bin/lineside-train synth "$OUT/data" --seed 7

# The line below streams MJPEG, which the PNG training images never went through: say so.
echo "== fit the default model (pretrained int8 backbone, head chosen on validation), calibrate -> $OUT/flange.lsb"
.venv/bin/lineside-train fit "$OUT/data" --out "$OUT/flange.lsb" --name flange --version 1 \
    --camera jpeg --metrics "$OUT/metrics.json"

echo "== inspect the held-out test images with lineside-daemon"
status=0
.venv/bin/lineside-daemon inspect "$OUT/flange.lsb" "$OUT/data/test" \
    --heatmaps "$OUT/heatmaps" > "$OUT/inspections.jsonl" || status=$?
.venv/bin/python - "$OUT/inspections.jsonl" <<'PY'
import collections, json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
counts = collections.Counter(r.get("verdict", "error") for r in rows)
print(f"{len(rows)} frames inspected: " + ", ".join(f"{v} {counts[v]}" for v in ("pass", "review", "fail", "error")))
lat = sorted(r["latency_ms"]["inference"] for r in rows if "latency_ms" in r)
if lat:
    print(f"median inference {lat[len(lat) // 2]:.1f} ms per frame")
PY

echo "== the line: lineside-daemon run on a video of parts, results over MQTT"
.venv/bin/lineside-train synth-video "$OUT/parts.avi" --seed 8 --frames 60 --kinds "$OUT/parts.json"
.venv/bin/python scripts/line_demo.py --bundle "$OUT/flange.lsb" --video "$OUT/parts.avi" \
    --kinds "$OUT/parts.json" --out "$OUT/line" || status=$?

echo
echo "bundle:      $OUT/flange.lsb"
echo "inspections: $OUT/inspections.jsonl (one JSON line per frame)"
echo "heatmaps:    $OUT/heatmaps/ (overlay JPEGs, outlines in verdict colours)"
echo "metrics:     $OUT/metrics.json"
echo "report:      $OUT/flange-report/report.html (histograms, curves, heatmap galleries)"
echo "done in $(( $(date +%s) - started )) s"
exit "$status"
