"use strict";
// The station page: state by server-sent events, the trend drawn in SVG, the review queue and
// the part view with its keyboard shortcuts. No library: the box serves it offline.
const $ = id => document.getElementById(id);
const ICON = {pass: "\u2713", review: "!", fail: "\u2715"};
const SVGNS = "http://www.w3.org/2000/svg";
let shown = null, lastAlarms = "", lastQueue = "", order = [], current = null;
let lastUpdate = Date.now(), staleAfterMs = 5000;

const num = v => (v == null ? "-" : v === 0 ? "0" : Number(v).toPrecision(4));
const clock = t => new Date(t * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false});
const esc = s => String(s).replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`);

function chip(id, text, cls) { const e = $(id); e.textContent = text; e.className = "chip " + cls; }

function reason(verdict, score, reviewAt, failAt) {
  if (verdict === "fail") return `score ${num(score)} is above the fail threshold ${num(failAt)}`;
  if (verdict === "review") return `score ${num(score)} is between review ${num(reviewAt)} and fail ${num(failAt)}`;
  return `score ${num(score)} is below the review threshold ${num(reviewAt)}`;
}

function show(s) {
  lastUpdate = Date.now();
  staleAfterMs = Math.max(5000, 10000 * s.refresh_s);
  $("stale").replaceChildren();
  chip("model", `model ${s.model.name} ${s.model.version}`, "");
  chip("camera", "camera " + s.camera, s.camera === "ok" ? "ok" : "bad");
  chip("broker", "broker " + s.broker, s.broker === "connected" ? "ok" : "bad");
  chip("outbox", "outbox " + s.outbox, s.alarms.some(a => a.kind === "outbox") ? "warn" : "ok");
  chip("fps", s.fps.toFixed(1) + " parts/s", "");
  showAlarms(s.alarms);
  if (s.verdict) {
    $("verdict").textContent = s.verdict;
    $("verdict-icon").textContent = ICON[s.verdict];
    $("verdict-box").className = "verdict-box v-" + s.verdict;
    const regions = s.regions ? `, ${s.regions} region${s.regions > 1 ? "s" : ""}` : "";
    $("reason").textContent = reason(s.verdict, s.score, s.review_at, s.fail_at) + regions;
    $("seq").textContent = s.seq;
    $("part-id").textContent = s.part_id ? `(id ${s.part_id})` : "";
  }
  for (const v of ["pass", "review", "fail"]) $("n-" + v).textContent = s.counts[v];
  $("dropped").textContent = s.dropped;
  if (s.seq !== null && s.seq !== shown) { shown = s.seq; liveImage(); }
  trend.state = s;
  drawTrend();
}

function liveImage() {
  if (shown !== null) $("live").src = `/live.jpg?seq=${shown}&map=${$("show-map").checked ? 1 : 0}`;
}

const banner = a => `<div class="banner ${a.level}" data-kind="${a.kind}">` +
  `<strong>${a.level === "alarm" ? "ALARM" : "WARNING"}: ${esc(a.title)}</strong>` +
  `<p>${esc(a.meaning)}</p><p><b>Check:</b> ${esc(a.check)}</p></div>`;

// A page that stops hearing from the station says so: it must never look healthy on old news.
function checkStale() {
  if (Date.now() - lastUpdate < staleAfterMs || $("stale").children.length) return;
  $("stale").innerHTML = banner({kind: "page", level: "alarm",
    title: `No update from the station since ${clock(lastUpdate / 1000)}`,
    meaning: "This page shows the last state it received: the station is stopped or " +
      "restarting, the network to it is down, or your session has ended.",
    check: "reload the page (and log in again); if it does not come back, the box and its " +
      "service (systemctl status lineside)."});
}

function showAlarms(alarms) {
  const text = JSON.stringify(alarms);
  if (text === lastAlarms) return;  // unchanged: screen readers announce only what is new
  lastAlarms = text;
  $("alarms").innerHTML = alarms.map(banner).join("");
}

// --- the trend: log score axis, time axis, labelled thresholds, verdict shapes, the EWMA ------
const trend = {state: null, pts: [], x: null};

function ticks(lo, hi) {
  const out = [];
  for (let d = Math.pow(10, Math.floor(Math.log10(lo))); d <= hi; d *= 10)
    for (const m of [1, 2, 5]) if (d * m >= lo && d * m <= hi) out.push(d * m);
  return out.length > 7 ? out.filter(v => /^1/.test(v.toPrecision(1))) : out;
}

function el(name, attrs, text) {
  const e = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function drawTrend() {
  const s = trend.state, svg = $("trend");
  if (!s || s.review_at == null) return;
  const W = svg.clientWidth || 600, H = svg.clientHeight || 240, L = 56, R = 12, T = 10, B = 26;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.replaceChildren();
  // A station that started minutes ago shows its minutes, not a window of empty time.
  const pts = s.trend, t1 = s.now;
  const t0 = Math.min(t1 - 60, Math.max(t1 - s.trend_s, pts.length ? pts[0][0] - 5 : 0));
  const span = t1 - t0;
  $("trend-span").textContent = span < 120 ? `last ${Math.round(span)} s` : `last ${Math.round(span / 60)} minutes`;
  const scores = pts.map(p => p[1]).filter(v => v > 0);
  const lo = Math.min(s.review_at / 3, ...scores) * 0.8;
  const hi = Math.max(s.fail_at * 1.5, ...scores) * 1.25;
  // Scores below the axis (a score of 0 has no log) sit just inside its floor, not on it.
  const y = v => T + (H - T - B) * (Math.log(hi) - Math.log(Math.max(v, lo * 1.12))) / (Math.log(hi) - Math.log(lo));
  const x = t => L + (W - L - R) * (t - t0) / (t1 - t0);
  for (const v of ticks(lo, hi)) {
    svg.append(el("line", {x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid-line"}));
    svg.append(el("text", {x: L - 6, y: y(v) + 4, "text-anchor": "end"}, num(v).replace(/\.?0+$/, "")));
  }
  const step = [15, 30, 60, 120, 300, 600, 1800, 3600].find(st => (t1 - t0) / st <= (W - L) / 90);
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    svg.append(el("line", {x1: x(t), x2: x(t), y1: T, y2: H - B, class: "grid-line"}));
    svg.append(el("text", {x: x(t), y: H - 8, "text-anchor": "middle"}, clock(t).slice(0, step < 60 ? 8 : 5)));
  }
  const chart = s.drift && s.drift.charts && s.drift.charts.score;
  const lines = [[s.fail_at, "th-fail", "fail " + num(s.fail_at)], [s.review_at, "th-review", "review " + num(s.review_at)]];
  if (chart) lines.push([chart.reference + chart.limit, "th-drift", "drift limit", true]);
  for (const [v, cls, label, left] of lines) {  // the drift limit's label on the left: it runs close to review's
    svg.append(el("line", {x1: L, x2: W - R, y1: y(v), y2: y(v), class: cls}));
    svg.append(el("text", left ? {x: L + 4, y: y(v) - 5} : {x: W - R - 4, y: y(v) - 5, "text-anchor": "end"}, label));
  }
  const ewma = pts.filter(p => p[4] != null).map(p => `${x(p[0]).toFixed(1)},${y(p[4]).toFixed(1)}`);
  if (ewma.length > 1) svg.append(el("polyline", {points: ewma.join(" "), class: "ewma"}));
  const shapes = {pass: "", review: "", fail: ""};
  for (const [t, v, verdict] of pts) {
    const px = x(t).toFixed(1), py = y(v).toFixed(1);
    if (verdict === "pass") shapes.pass += `M${px - 3.5} ${py}a3.5 3.5 0 1 0 7 0a3.5 3.5 0 1 0 -7 0`;
    else if (verdict === "review") shapes.review += `M${px} ${py - 5}l5 5l-5 5l-5 -5z`;
    else shapes.fail += `M${px - 4} ${py - 4}l8 8m0 -8l-8 8`;
  }
  for (const [verdict, d] of Object.entries(shapes)) if (d) svg.append(el("path", {d, class: "pt-" + verdict}));
  trend.pts = pts; trend.x = x;
  const last = pts[pts.length - 1];
  svg.setAttribute("aria-label", `Score trend of the ${$("trend-span").textContent}` +
    (last ? `; latest ${num(last[1])} (${last[2]})` : "") +
    `; review at ${num(s.review_at)}, fail at ${num(s.fail_at)}`);
}

function nearest(evt) {
  if (!trend.pts.length) return null;
  const box = $("trend").getBoundingClientRect(), px = evt.clientX - box.left;
  let best = null, dist = 14;
  for (const p of trend.pts) { const d = Math.abs(trend.x(p[0]) - px); if (d < dist) { dist = d; best = p; } }
  return best;
}

function tip(evt, text) {
  const t = $("tip"), box = $("trend").parentNode.getBoundingClientRect();
  if (!text) { t.hidden = true; return; }
  t.textContent = text; t.hidden = false;
  t.style.left = Math.min(evt.clientX - box.left + 12, box.width - t.offsetWidth) + "px";
  t.style.top = (evt.clientY - box.top - 40) + "px";
}

$("trend").addEventListener("pointermove", evt => {
  const p = nearest(evt);
  tip(evt, p && `${clock(p[0])}  part ${p[3]}  ${p[2]}  score ${num(p[1])}`);
});
$("trend").addEventListener("pointerleave", evt => tip(evt, null));
$("trend").addEventListener("click", async evt => {
  const p = nearest(evt);
  if (p && !(await openPart(p[3], [p[3]]))) tip(evt, `part ${p[3]} (${p[2]}) was not kept for review`);
});

// --- the review queue and the part view ------------------------------------------------------
async function loadQueue() {
  const q = new URLSearchParams({verdict: $("f-verdict").value, decided: $("f-decided").value});
  const r = await fetch("/api/review?" + q);
  if (!r.ok) return;
  const data = await r.json(), text = JSON.stringify(data);
  if (text === lastQueue) return;  // unchanged: keep the list (and the focus in it) as it is
  lastQueue = text;
  $("queue-size").textContent = data.enabled ? `${data.undecided} to decide, ${data.decided} decided` : "(off)";
  $("queue").innerHTML = data.items.map(it => `<li><button type="button" class="item" data-seq="${it.seq}">` +
    `<img src="/review/${it.seq}/heatmap.jpg" alt="" loading="lazy"><span class="what">` +
    `<span><span class="tag ${it.verdict}">${ICON[it.verdict]} ${it.verdict}</span> part ${it.seq}` +
    `${it.part_id ? " (" + esc(it.part_id) + ")" : ""}, score ${num(it.score)}</span>` +
    `<span class="meta">kept ${clock(it.kept_at)}${it.labelled ? `, <b class="decided">${it.labelled.label}</b> by ` +
    `${esc(it.labelled.by || "?")} at ${clock(it.labelled.at)}` : ""}</span></span></button></li>`).join("");
  if (!data.items.length) $("queue").innerHTML = "<li class='small'>Nothing here.</li>";
}

$("queue").addEventListener("click", evt => {
  const item = evt.target.closest(".item");
  if (item) openPart(Number(item.dataset.seq), [...$("queue").querySelectorAll(".item")].map(b => Number(b.dataset.seq)));
});

async function openPart(seq, within) {
  const r = await fetch(`/api/part/${seq}`);
  if (!r.ok) return false;
  const doc = await r.json();
  current = seq; order = within || order;
  const th = doc.thresholds;
  $("part-h").textContent = `Part ${seq}` + (doc.part_id ? ` (id ${doc.part_id})` : "");
  $("part-verdict").innerHTML = `<span class="tag ${doc.verdict}">${ICON[doc.verdict]} ${doc.verdict}</span>: ` +
    esc(reason(doc.verdict, doc.score, th.review_at, th.fail_at)) +
    `, ${doc.regions.length} region${doc.regions.length === 1 ? "" : "s"}, inspected ${clock(doc.inspected_at)}`;
  const top = Math.max(th.fail_at * 1.5, doc.score * 1.1), at = v => (100 * v / top).toFixed(1) + "%";
  $("scorebar").style.setProperty("--r", at(th.review_at));
  $("scorebar").style.setProperty("--f", at(th.fail_at));
  $("scorebar").innerHTML = `<span class="mark" style="left:${at(doc.score)}"></span>`;
  $("part-frame").src = `/review/${seq}/frame.jpg`;
  $("part-map").src = `/review/${seq}/heatmap.jpg`;
  $("regions").querySelector("tbody").innerHTML = doc.regions.length ? doc.regions.map((g, i) =>
    `<tr><td>${i + 1}</td><td>${g.area_px}</td><td>${num(g.peak_value)}</td><td>${g.box.join(", ")}</td></tr>`).join("")
    : "<tr><td colspan='4'>no region above the pixel threshold</td></tr>";
  $("part-model").textContent = `Judged by model ${doc.model.name} ${doc.model.version}.`;
  const l = doc.labelled;
  $("decided").textContent = l ? `Decided ${l.label} by ${l.by || "?"} at ${clock(l.at)}${l.note ? ": " + l.note : ""}` : "Not decided yet.";
  $("note").value = "";
  if (!$("part").open) $("part").showModal();
  return true;
}

function step(by) {
  const i = order.indexOf(current) + by;
  if (i >= 0 && i < order.length) openPart(order[i]);
  else if (by > 0) { $("part").close(); loadQueue(); }
}

async function decide(label) {
  const r = await fetch("/api/label", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({seq: current, label, note: $("note").value})});
  if (!r.ok) { $("decided").textContent = "Not saved: " + (await r.json()).error; return; }
  lastQueue = ""; loadQueue();
  step(1);
}

$("decide-good").onclick = () => decide("good");
$("decide-defective").onclick = () => decide("defective");
$("next").onclick = () => step(1);
$("prev").onclick = () => step(-1);
$("close").onclick = () => $("part").close();
document.addEventListener("keydown", evt => {
  if (!$("part").open || evt.target.id === "note" || evt.ctrlKey || evt.metaKey || evt.altKey) return;
  const act = {g: () => decide("good"), d: () => decide("defective"), n: () => step(1),
    p: () => step(-1), ArrowRight: () => step(1), ArrowLeft: () => step(-1)}[evt.key];
  if (act) { evt.preventDefault(); act(); }
});

$("show-map").onchange = liveImage;
$("f-verdict").onchange = $("f-decided").onchange = () => { lastQueue = ""; loadQueue(); };
window.addEventListener("resize", drawTrend);
new EventSource("/events").onmessage = e => show(JSON.parse(e.data));
loadQueue(); setInterval(loadQueue, 3000); setInterval(checkStale, 1000);
