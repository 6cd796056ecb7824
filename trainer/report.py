"""The evaluation report: metrics.json and one self-contained HTML page for a quality engineer.

Every rate is counted on held-out test images scored by the int8 model through the box's own
pipeline; nothing is extrapolated from a fitted curve. Images are embedded, so the page can be
mailed or archived as one file.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

# The object API draws to files with no display and no global pyplot state.
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from lineside.daemon.core import heatmap
from lineside.deploy.manifest import Manifest
from lineside.trainer import metrics as m
from lineside.trainer.dataset import read_frames
from lineside.trainer.evaluate import Result

GALLERY_EACH = 4
THUMB_PX = 256
_GOOD, _BAD = "#3b8f3b", "#c0392b"


def default_dir(bundle_path: Path) -> Path:
    """BUNDLE-report/ beside the bundle."""
    return bundle_path.with_name(bundle_path.stem + "-report")


def write(
    folder: Path,
    manifest: Manifest,
    metrics: dict,
    results: list[Result],
    say: Callable[[str], None] = print,
) -> Path:
    """Write folder/metrics.json and folder/report.html; return the HTML path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    page = folder / "report.html"
    page.write_text(render(manifest, metrics, results))
    say(f"report written: {page}")
    return page


def render(manifest: Manifest, metrics: dict, results: list[Result]) -> str:
    t = manifest.thresholds
    labels = np.array([r.sample.defective for r in results], bool)
    scores = np.array([r.inspection.score for r in results])
    parts = [
        _head(manifest),
        _headline(metrics),
        "<h2>Scores of good and defective parts</h2>",
        _img(_histogram(labels, scores, t.review_at, t.fail_at)),
        "<h2>False rejects against escapes</h2>",
        "<p>Each point is one threshold (parts at or below it pass). The markers are the bundle's "
        "thresholds: a part above <code>review_at</code> goes to an operator, above "
        "<code>fail_at</code> it is rejected.</p>",
        _img(_reject_escape(labels, scores, t.review_at, t.fail_at)),
    ]
    if labels.any() and not labels.all():
        parts += ["<h2>ROC and precision-recall</h2>", _img(_roc_pr(labels, scores))]
    parts += [
        "<h2>Per defect type</h2>",
        "<p>Each defect type against all good test parts.</p>",
        _per_defect(metrics),
        _gallery(results, manifest),
        _calibration(manifest),
        "</body></html>",
    ]
    return "\n".join(parts)


def _dataset(summary: dict) -> str:
    """'mvtec-bottle: 209 good images to train on; test: 20 good, 63 defective (3 kinds)'."""
    test = summary.get("test") or {}
    good = test.get("good", 0)
    bad = {k: v for k, v in test.items() if k != "good"}
    line = f"{summary.get('name', '-')}: {summary.get('train_good', 0)} good images to train on"
    if test:
        line += f"; test: {good} good, {sum(bad.values())} defective ({len(bad)} kinds)"
    return line


def _sources(summary: dict) -> str:
    """Where the good training images came from: '150 from flange, 12 from line-cell-1'."""
    sources = summary.get("sources") or []
    return ", ".join(f"{s['train_good']} from {Path(s['folder']).name}" for s in sources) or "-"


def _head(mf: Manifest) -> str:
    a, post, t = mf.anomaly_map, mf.postprocess, mf.thresholds
    rows = [
        ("model", f"{mf.model.name} {mf.model.version}"),
        ("architecture", mf.model.architecture),
        ("dataset", _dataset(mf.dataset)),
        ("images from", _sources(mf.dataset)),
        ("input", f"{mf.preprocess.size[0]}x{mf.preprocess.size[1]} {mf.preprocess.color}"),
        ("anomaly map", f"{a.kind}, smoothing sigma {a.smooth_sigma:g}"),
        ("score", post.score),
        ("thresholds", f"review_at {t.review_at:.5g}, fail_at {t.fail_at:.5g}"),
        ("trained", f"{mf.calibration.get('train_seconds', '-')} s, {mf.model.created_at}"),
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Lineside report: {html.escape(mf.model.name)}</title><style>"
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right}th{background:#f0f0f0}td:first-child{text-align:left}"
        ".g{display:flex;flex-wrap:wrap;gap:8px}.g figure{margin:0;width:260px;font-size:12px}"
        "</style></head><body>"
        f"<h1>Lineside evaluation: {html.escape(mf.model.name)}</h1>"
        "<p>All numbers: held-out test images, the int8 model, the box's own pipeline.</p>"
        + _table(["", ""], [[k, html.escape(str(v))] for k, v in rows], header=False)
        + "".join(
            f"<p style='color:#b00;font-weight:bold'>{html.escape(w)}</p>"
            for w in mf.calibration.get("warnings", [])
        )
    )


_HEADLINE = [
    ("image AUROC", "image_auroc", False),
    ("average precision", "average_precision", False),
    ("pixel AUROC", "pixel_auroc", False),
    ("AUPRO (per-region overlap up to 30% FPR)", "pro_auc_0.3", False),
    ("false rejects (good parts failed)", "false_reject_rate", True),
    ("good parts sent to review", "good_to_review_rate", True),
    ("escapes (defective parts passed)", "escape_rate", True),
    ("all parts sent to review", "review_rate", True),
    ("defects localized (a flagged pixel on the mask)", "defects_localized", True),
]


def _headline(mx: dict) -> str:
    rows = [[name, m.text(mx.get(key), pct)] for name, key, pct in _HEADLINE]
    for share, caught in (mx.get("caught_at_good_held_back") or {}).items():
        rows.append([f"defects caught with {share} of good parts held back", m.text(caught, True)])
    cpk = mx.get("cpk")
    if cpk:
        rows.append(
            [
                "Cpk of good scores against fail_at (skewness "
                f"{cpk['skewness']:.1f}: normal theory overstates the margin)",
                f"{cpk['cpk']:.2f}",
            ]
        )
    agree = mx.get("int8_vs_float")
    if agree:
        rows.append(["int8 vs float: score correlation", m.text(agree["score_correlation"])])
        rows.append(["int8 vs float: image AUROC difference", m.text(agree["auroc_difference"])])
    good, bad = mx.get("good", 0), mx.get("defective", 0)
    return f"<h2>Summary ({good} good, {bad} defective test parts)</h2>" + _table(
        ["", ""], rows, header=False
    )


def _per_defect(mx: dict) -> str:
    head = ["defect", "parts", "image AUROC", "AP", "pixel AUROC", "PRO", "escapes", "to review"]
    rows = [
        [
            html.escape(kind),
            b["defective"],
            m.text(b["image_auroc"]),
            m.text(b["average_precision"]),
            m.text(b["pixel_auroc"]),
            m.text(b["pro_auc_0.3"]),
            m.text(b["escape_rate"], True),
            m.text(b["defective_to_review_rate"], True),
        ]
        for kind, b in mx.get("per_defect", {}).items()
    ]
    return _table(head, rows)


def _table(head: list[str], rows: list[list], header: bool = True) -> str:
    th = "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{th}{body}</table>"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _img(b64: str, mime: str = "png", width: str = "") -> str:
    style = f" style='width:{width}'" if width else ""
    return f"<img{style} src='data:image/{mime};base64,{b64}'>"


def _thresholds(ax, review_at: float, fail_at: float) -> None:
    ax.axvline(review_at, color="#e69f00", ls="--", label=f"review_at {review_at:.4g}")
    ax.axvline(fail_at, color="#c0392b", ls="-", label=f"fail_at {fail_at:.4g}")


def _histogram(labels, scores, review_at, fail_at) -> str:
    fig = Figure(figsize=(9, 3.6))
    ax = fig.subplots()
    bins = np.linspace(min(scores.min(), 0), max(scores.max(), fail_at) * 1.05, 60)
    ax.hist(scores[~labels], bins, color=_GOOD, alpha=0.6, label=f"good ({(~labels).sum()})")
    ax.hist(scores[labels], bins, color=_BAD, alpha=0.6, label=f"defective ({labels.sum()})")
    _thresholds(ax, review_at, fail_at)
    ax.set_xlabel("image score")
    ax.set_ylabel("parts")
    ax.legend()
    return _png(fig)


def _reject_escape(labels, scores, review_at, fail_at) -> str:
    _, frr, esc = m.reject_escape_curve(labels, scores)
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.subplots()
    ax.step(frr, esc, where="post", color="#444")
    points = (
        (review_at, "#e69f00", "review_at: {f:.1%} of good parts flagged, {e:.1%} escape"),
        (fail_at, "#c0392b", "fail_at: {f:.1%} false rejects, {e:.1%} of defects not failed"),
    )
    for t, colour, text in points:
        f = float(np.mean(scores[~labels] > t)) if (~labels).any() else 0.0
        e = float(np.mean(scores[labels] <= t)) if labels.any() else 0.0
        ax.plot(f, e, "o", color=colour, ms=9, label=text.format(f=f, e=e))
    ax.set_xlabel("false-reject rate (good parts above the threshold)")
    ax.set_ylabel("escape rate (defective parts at or below)")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="center right")
    return _png(fig)


def _roc_pr(labels, scores) -> str:
    fig = Figure(figsize=(10, 4.2))
    a, b = fig.subplots(1, 2)
    fpr, tpr, _ = roc_curve(labels, scores)
    a.plot(fpr, tpr, color=_BAD)
    a.plot([0, 1], [0, 1], ":", color="#999")
    a.set(xlabel="false-positive rate", ylabel="true-positive rate")
    a.set_title(f"ROC, AUROC {m.image_auroc(labels, scores):.3f}")
    prec, rec, _ = precision_recall_curve(labels, scores)
    b.plot(rec, prec, color=_BAD)
    b.axhline(labels.mean(), ls=":", color="#999", label="share of defective parts")
    b.set(xlabel="recall", ylabel="precision", ylim=(0, 1.02))
    b.set_title(f"precision-recall, AP {m.average_precision(labels, scores):.3f}")
    b.legend(loc="lower left")
    return _png(fig)


def _overlay(r: Result, manifest: Manifest) -> str:
    """The box's heatmap overlay with the ground truth outlined in magenta."""
    frame = read_frames([r.sample.path])[0]
    out = heatmap.render(frame, r.inspection, manifest.postprocess.pixel_threshold)
    if r.sample.defective and r.truth.any():
        truth = cv2.resize(
            r.truth.astype(np.uint8),
            (
                round(r.truth.shape[1] * r.inspection.geometry.sx),
                round(r.truth.shape[0] * r.inspection.geometry.sy),
            ),
            interpolation=cv2.INTER_NEAREST,
        )
        contours, _ = cv2.findContours(truth, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        geo = r.inspection.geometry
        cv2.drawContours(out, contours, -1, (255, 0, 255), 1, offset=(round(geo.x0), round(geo.y0)))
    scale = THUMB_PX / max(out.shape[:2])
    out = cv2.resize(out, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return base64.b64encode(heatmap.encode_jpeg(out, 85)).decode()


def _gallery(results: list[Result], manifest: Manifest) -> str:
    good = sorted((r for r in results if not r.sample.defective), key=lambda r: -r.inspection.score)
    bad = sorted((r for r in results if r.sample.defective), key=lambda r: r.inspection.score)
    caught = [r for r in bad if r.inspection.verdict != "pass"]
    mid = len(caught) // 2
    typical = caught[max(0, mid - GALLERY_EACH // 2) : mid + GALLERY_EACH // 2 + 1][:GALLERY_EACH]
    sections = [
        ("Worst false rejects: good parts with the highest scores", good[:GALLERY_EACH]),
        ("Worst escapes: defective parts with the lowest scores", bad[:GALLERY_EACH]),
        ("Typical detections: defective parts near the median caught score", typical),
    ]
    out = [
        "<h2>Heatmaps</h2><p>The box's overlay: anomaly map in colour, flagged regions outlined "
        "in white, the verdict and score top left; ground truth outlined in magenta.</p>"
    ]
    for title, chosen in sections:
        if not chosen:
            continue
        out.append(f"<h3>{title}</h3><div class='g'>")
        for r in chosen:
            caption = (
                f"{html.escape(r.sample.label)}/{html.escape(r.sample.path.name)}: "
                f"{r.inspection.verdict} {r.inspection.score:.4g}"
            )
            out.append(
                f"<figure>{_img(_overlay(r, manifest), 'jpeg', '256px')}"
                f"<figcaption>{caption}</figcaption></figure>"
            )
        out.append("</div>")
    return "\n".join(out)


def _calibration(mf: Manifest) -> str:
    cal = mf.calibration
    out = ["<h2>Calibration</h2>"]
    rule = cal.get("thresholds", {})
    if rule:
        out.append(f"<p>{html.escape(rule.get('rule', ''))}.</p>")
        out.append(f"<pre>{html.escape(json.dumps(rule, indent=2))}</pre>")
    history = cal.get("history", {})
    if history.get("loss"):
        fig = Figure(figsize=(7, 3))
        ax = fig.subplots()
        ax.plot(history["loss"], label="training loss")
        if history.get("val_loss"):
            ax.plot(history["val_loss"], label="validation loss")
        ax.set(xlabel="epoch", ylabel="loss", yscale="log")
        ax.legend()
        out += ["<h3>Training</h3>", _img(_png(fig))]
    selection = cal.get("selection", {})
    if selection.get("candidates"):
        rows = [
            [
                c["map"],
                f"{c['smooth_sigma']:g}",
                c["score"],
                m.text(c["image_auroc"]),
                m.text(c["pixel_auroc"]),
                m.text(c["merit"]),
            ]
            for c in sorted(selection["candidates"], key=lambda c: -c["merit"])
        ]
        out.append(
            "<h3>Map and score chosen on validation</h3>"
            f"<p>{html.escape(selection.get('validation', ''))}.</p>"
        )
        out.append(
            _table(["map", "smoothing", "score", "image AUROC", "pixel AUROC", "merit"], rows)
        )
    if selection.get("heads"):
        out.append(
            "<h3>Head chosen on validation</h3><p>Each head calibrated the same way (good images "
            "left out in turn); kept: the one that sends most synthetic defects to review or "
            "worse at its own thresholds.</p>"
        )
        rows = [
            [name, m.text(h["caught"], True), m.text(h["merit"])]
            for name, h in selection["heads"].items()
        ]
        out.append(_table(["candidate", "synthetic defects caught", "best merit"], rows))
    if selection.get("inputs"):
        rows = [
            [name, m.text(h["caught"], True), m.text(h["merit"])]
            for name, h in selection["inputs"].items()
        ]
        out.append("<h3>Input geometry and size chosen on validation (Gaussian head)</h3>")
        out.append(_table(["candidate", "synthetic defects caught", "best merit"], rows))
    synthetic = cal.get("thresholds", {}).get("synthetic_defects")
    if synthetic:
        out.append(_synthetic(synthetic))
    return "\n".join(out)


def _synthetic(tally: dict) -> str:
    """The share of each synthetic defect kind and size the thresholds would pass."""
    kinds = tally["kinds"]
    sizes = list(next(iter(kinds.values())))
    rows = [[k, *(m.text(v[s]["passed"], True) for s in sizes)] for k, v in kinds.items()]
    return (
        "<h3>Synthetic defects the thresholds would pass</h3>"
        f"<p>Each kind and size painted on {tally['images']} held-out good images, scored by "
        f"a head that never saw the image: {m.text(tally['passed'], True)} would pass in all.</p>"
        + _table(["kind", *sizes], rows)
    )
