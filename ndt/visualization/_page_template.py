"""The self-contained HTML page: CSS and a dependency-free script drawing SVG from inline JSON.

`page.py` fills in ``__TITLE__`` (HTML-escaped) and ``__DATA__`` (JSON with ``<`` escaped).
"""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="ndt plot --html">
<title>__TITLE__</title>
<style>
:root { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; }
body { margin: 1.2rem 2rem; max-width: 1280px; }
h1 { font-size: 1.35rem; margin: 0 0 .2rem; }
h2 { font-size: 1.1rem; margin: 1.4rem 0 .4rem; }
.sub { color: #555; margin: 0 0 .8rem; font-size: .9rem; }
.controls { display: flex; flex-wrap: wrap; gap: .6rem 1.2rem; align-items: center;
  margin-bottom: .6rem; font-size: .9rem; }
.controls input[type=search] { width: 14rem; }
.main { display: flex; gap: 1rem; align-items: flex-start; }
#plot-wrap { position: relative; flex: 1 1 auto; min-width: 0; }
#plot { width: 100%; height: auto; display: block; background: #fff; }
#plot .grid line { stroke: #e4e4e4; }
#plot .tick text { font-size: 12px; fill: #444; }
#plot .label { font-size: 13px; fill: #222; }
#plot .trace { fill: none; stroke-width: 1.8; stroke-linejoin: round; }
#plot .jump { stroke: #000; stroke-width: 1; cursor: pointer; }
#plot .transition { fill: #d1d1d1; fill-opacity: 0.55; }
#plot .transition-label { font-size: 11px; fill: #4d4d4d; }
#plot .frame { fill: none; stroke: #999; }
#tooltip { position: absolute; pointer-events: none; background: rgba(255,255,255,.96);
  border: 1px solid #888; border-radius: 4px; padding: .3rem .5rem; font-size: .8rem;
  white-space: nowrap; box-shadow: 0 1px 4px rgba(0,0,0,.2); }
#legend { list-style: none; margin: 0; padding: 0; flex: 0 0 15rem; max-height: 520px;
  overflow-y: auto; font-size: .82rem; }
#legend li { margin: .1rem 0; }
#legend .swatch { display: inline-block; width: 1.4em; height: .3em; margin: 0 .4em .2em .2em;
  vertical-align: middle; }
#legend li.hidden { display: none; }
table { border-collapse: collapse; font-size: .82rem; }
th, td { padding: .2rem .6rem; border-bottom: 1px solid #ddd; text-align: right; }
th { background: #f3f3f3; position: sticky; top: 0; }
td:first-child, th:first-child, td.text { text-align: left; }
tr.sig td { font-weight: 600; }
button { font-size: .85rem; }
</style>
</head>
<body>
<h1 id="title"></h1>
<p class="sub" id="subtitle"></p>
<div class="controls">
  <label>Metric <select id="metric"></select></label>
  <label>Layers <input id="layer-filter" type="search"
    placeholder="filter: text or glob, e.g. blocks.*"></label>
  <button id="show-all" type="button">all</button>
  <button id="show-none" type="button">none</button>
  <label><input id="logx" type="checkbox"> log-scale steps</label>
  <span id="count"></span>
</div>
<div class="main">
  <div id="plot-wrap">
    <svg id="plot" viewBox="0 0 960 500" role="img" aria-label="metric curves"></svg>
    <div id="tooltip" hidden></div>
  </div>
  <ul id="legend"></ul>
</div>
<h2>Jumps</h2>
<p class="sub" id="jump-note"></p>
<table id="jumps">
<thead><tr><th>layer</th><th>step</th><th>previous step</th><th>before</th><th>after</th>
<th>&Delta;</th><th>p</th><th>q</th><th>methods</th><th>significant</th></tr></thead>
<tbody></tbody>
</table>
<script id="ndt-data" type="application/json">__DATA__</script>
<script>
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("ndt-data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const W = 960, H = 500, M = { l: 76, r: 18, t: 14, b: 52 };
  const $ = (id) => document.getElementById(id);
  const svg = $("plot"), tip = $("tooltip"), picker = $("metric");
  const filter = $("layer-filter"), logBox = $("logx"), legend = $("legend");
  const checked = new Set(D.layers);
  let points = [];

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const key in attrs) node.setAttribute(key, attrs[key]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(Number(v))) return "\u2013";
    const x = Number(v);
    if (x !== 0 && Math.abs(x) < 1e-3) return x.toExponential(2).replace(/\.?0+e/, "e");
    const s = x.toPrecision(4);
    return s.includes(".") && !s.includes("e") ? s.replace(/\.?0+$/, "") : s;
  }
  function fmtStep(s) {
    if (Math.abs(s) >= 1e6) return fmt(s / 1e6) + "M";
    if (Math.abs(s) >= 1e4) return fmt(s / 1e3) + "k";
    return String(Math.round(s));
  }
  function matcher(text) {
    const pattern = text.trim();
    if (!pattern) return () => true;
    if (!/[*?]/.test(pattern)) return (s) => s.includes(pattern);
    const body = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*").replace(/\?/g, ".");
    const re = new RegExp("^" + body + "$");
    return (s) => re.test(s);
  }
  function visibleLayers() {
    const test = matcher(filter.value);
    return D.layers.filter((l) => checked.has(l) && test(l));
  }
  function stepTransform(log) {
    const pos = D.steps.filter((s) => s > 0);
    if (!log || !pos.length) return (s) => s;
    const lo = Math.min(...pos);
    return (s) => (s < lo ? s / lo : 1 + Math.log10(s / lo));
  }
  function niceTicks(lo, hi, n) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const r = raw / mag;
    const step = (r >= 7.5 ? 10 : r >= 3.5 ? 5 : r >= 1.5 ? 2 : 1) * mag;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
      out.push(Number(v.toPrecision(12)));
    }
    return out;
  }
  function stepTicks(log) {
    const lo = Math.min(...D.steps), hi = Math.max(...D.steps);
    if (!log) return niceTicks(lo, hi, 8);
    const pos = D.steps.filter((s) => s > 0);
    const out = D.steps.some((s) => s <= 0) ? [0] : [];
    const first = Math.min(...pos);
    for (let p = Math.pow(10, Math.ceil(Math.log10(first) - 1e-9)); p <= hi; p *= 10) {
      out.push(p);
    }
    return out.length >= 2 ? out : niceTicks(lo, hi, 6);
  }
  function triangle(x, y, up) {
    const s = 7, d = up ? -1 : 1;
    return "M" + x + "," + (y + d * s) + "L" + (x - s) + "," + (y - d * s * 0.7) +
      "L" + (x + s) + "," + (y - d * s * 0.7) + "Z";
  }

  function render() {
    const metric = picker.value, series = D.metrics[metric];
    const layers = visibleLayers();
    const log = logBox.checked, tx = stepTransform(log);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    points = [];
    const xs = D.steps.map(tx);
    const x0 = Math.min(...xs), x1 = Math.max(...xs);
    let y0 = Infinity, y1 = -Infinity;
    for (const layer of layers) {
      for (const v of series.values[D.layers.indexOf(layer)]) {
        if (v !== null) { y0 = Math.min(y0, v); y1 = Math.max(y1, v); }
      }
    }
    if (!Number.isFinite(y0)) { y0 = 0; y1 = 1; }
    if (y1 === y0) { const h = Math.abs(y0) * 0.5 || 0.5; y0 -= h; y1 += h; }
    const pad = (y1 - y0) * 0.06;
    y0 -= pad; y1 += pad;
    const px = (x) => M.l + (x1 === x0 ? 0.5 : (x - x0) / (x1 - x0)) * (W - M.l - M.r);
    const py = (y) => H - M.b - ((y - y0) / (y1 - y0)) * (H - M.t - M.b);

    const grid = el("g", { class: "grid" }, svg);
    for (const v of niceTicks(y0, y1, 6)) {
      el("line", { x1: M.l, x2: W - M.r, y1: py(v), y2: py(v) }, grid);
      const t = el("text", { x: M.l - 6, y: py(v) + 4, "text-anchor": "end" },
        el("g", { class: "tick" }, svg));
      t.textContent = fmt(v);
    }
    for (const s of stepTicks(log)) {
      const X = px(tx(s));
      if (X < M.l - 1 || X > W - M.r + 1) continue;
      el("line", { x1: X, x2: X, y1: M.t, y2: H - M.b }, grid);
      const t = el("text", { x: X, y: H - M.b + 17, "text-anchor": "middle" },
        el("g", { class: "tick" }, svg));
      t.textContent = fmtStep(s);
    }
    el("rect", { class: "frame", x: M.l, y: M.t, width: W - M.l - M.r,
      height: H - M.t - M.b }, svg);
    const xl = el("text", { class: "label", x: (M.l + W - M.r) / 2, y: H - 10,
      "text-anchor": "middle" }, svg);
    xl.textContent = "training step" + (log ? " (log scale)" : "");
    const yl = el("text", { class: "label", x: 0, y: 0, "text-anchor": "middle",
      transform: "translate(16," + (M.t + H - M.b) / 2 + ") rotate(-90)" }, svg);
    yl.textContent = series.label;

    const bands = el("g", { class: "transitions" }, svg);
    (D.transitions || []).forEach((t) => {
      const a = px(tx(t.prev_step)), b = px(tx(t.step));
      const band = el("rect", { class: "transition", x: a, y: M.t, width: Math.max(b - a, 2),
        height: H - M.t - M.b }, bands);
      const title = el("title", {}, band);
      title.textContent = "transition #" + t.rank + ": " + t.prev_step + "\u2192" + t.step +
        ", p = " + fmt(t.p_value) + ", " + t.n_curves + " curves (" + t.layers + ")";
      const label = el("text", { class: "transition-label", x: b - 3, y: M.t + 12,
        "text-anchor": "end" }, bands);
      label.textContent = "#" + t.rank;
    });
    const traces = el("g", { class: "traces" }, svg);
    for (const layer of layers) {
      const i = D.layers.indexOf(layer);
      let d = "", pen = false;
      series.values[i].forEach((v, k) => {
        if (v === null) { pen = false; return; }
        const X = px(xs[k]), Y = py(v);
        d += (pen ? "L" : "M") + X.toFixed(1) + "," + Y.toFixed(1);
        pen = true;
        points.push([X, Y, layer, D.steps[k], v, i]);
      });
      el("path", { class: "trace", d: d || "M0,0", stroke: D.colors[i], "data-layer": layer },
        traces);
    }
    const marks = el("g", { class: "jumps" }, svg);
    D.jumps.forEach((j, index) => {
      if ((j.metric !== null && j.metric !== metric) || !j.significant) return;
      if (!layers.includes(j.layer)) return;
      const i = D.layers.indexOf(j.layer), k = D.steps.indexOf(j.step);
      const v = k >= 0 && series.values[i][k] !== null ? series.values[i][k] : j.value_after;
      if (v === null || v === undefined) return;
      el("path", { class: "jump", d: triangle(px(tx(j.step)), py(v), (j.delta || 0) >= 0),
        fill: D.colors[i], "data-index": index, "data-layer": j.layer }, marks);
    });
    el("circle", { id: "hover-dot", r: 5, cx: -10, cy: -10, fill: "none",
      stroke: "#000", "stroke-width": 1.5 }, svg);
    $("count").textContent = "showing " + layers.length + " of " + D.layers.length + " layers";
    renderTable(metric, layers);
  }

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
  }
  function renderTable(metric, layers) {
    const body = document.querySelector("#jumps tbody");
    body.textContent = "";
    const rows = D.jumps.filter((j) => (j.metric === null || j.metric === metric) &&
      layers.includes(j.layer));
    const nSig = rows.filter((j) => j.significant).length;
    $("jump-note").textContent = D.jumps.length === 0
      ? "This results file has no jumps table; run `ndt jumps` on it first."
      : rows.length + " jumps of " + metric + " in the shown layers, " + nSig +
        " significant (marked \u25B2 / \u25BC on the curves).";
    for (const j of rows) {
      const tr = document.createElement("tr");
      if (j.significant) tr.className = "sig";
      cell(tr, j.layer, "text");
      cell(tr, String(j.step));
      cell(tr, j.prev_step === null ? "\u2013" : String(j.prev_step));
      cell(tr, fmt(j.value_before)); cell(tr, fmt(j.value_after)); cell(tr, fmt(j.delta));
      cell(tr, fmt(j.p_value)); cell(tr, fmt(j.q_value));
      cell(tr, j.methods === null ? "" : String(j.methods), "text");
      cell(tr, j.significant ? "yes" : "no", "text");
      body.appendChild(tr);
    }
  }

  function showTip(lines, clientX, clientY) {
    tip.textContent = "";
    for (const line of lines) {
      const div = document.createElement("div");
      div.textContent = line;
      tip.appendChild(div);
    }
    const box = $("plot-wrap").getBoundingClientRect();
    tip.hidden = false;
    let left = clientX - box.left + 14;
    if (left + tip.offsetWidth > box.width) left = clientX - box.left - tip.offsetWidth - 14;
    tip.style.left = left + "px";
    tip.style.top = (clientY - box.top + 14) + "px";
  }
  function hideTip() {
    tip.hidden = true;
    const dot = $("hover-dot");
    if (dot) { dot.setAttribute("cx", -10); dot.setAttribute("cy", -10); }
  }
  svg.addEventListener("mousemove", (ev) => {
    const metric = picker.value;
    if (ev.target.classList && ev.target.classList.contains("jump")) {
      const j = D.jumps[Number(ev.target.getAttribute("data-index"))];
      showTip([j.layer, "jump at step " + j.step + " (from " + (j.prev_step ?? "\u2013") + ")",
        metric + ": " + fmt(j.value_before) + " \u2192 " + fmt(j.value_after),
        "p = " + fmt(j.p_value) + ", q = " + fmt(j.q_value)], ev.clientX, ev.clientY);
      return;
    }
    const r = svg.getBoundingClientRect();
    const mx = (ev.clientX - r.left) * (W / r.width), my = (ev.clientY - r.top) * (H / r.height);
    let best = null, bestD = 30 * 30;
    for (const p of points) {
      const d = (p[0] - mx) * (p[0] - mx) + (p[1] - my) * (p[1] - my);
      if (d < bestD) { bestD = d; best = p; }
    }
    if (!best) { hideTip(); return; }
    const dot = $("hover-dot");
    dot.setAttribute("cx", best[0]); dot.setAttribute("cy", best[1]);
    dot.setAttribute("stroke", D.colors[best[5]]);
    showTip([best[2], "step: " + best[3], metric + ": " + fmt(best[4])], ev.clientX, ev.clientY);
  });
  svg.addEventListener("mouseleave", hideTip);

  function buildLegend() {
    D.layers.forEach((layer, i) => {
      const li = document.createElement("li");
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox"; box.checked = true; box.dataset.layer = layer;
      box.addEventListener("change", () => {
        if (box.checked) checked.add(layer); else checked.delete(layer);
        render();
      });
      const swatch = document.createElement("span");
      swatch.className = "swatch"; swatch.style.background = D.colors[i];
      label.append(box, swatch, document.createTextNode(layer));
      li.appendChild(label); li.dataset.layer = layer;
      legend.appendChild(li);
    });
  }
  function setAll(on) {
    const test = matcher(filter.value);
    for (const box of legend.querySelectorAll("input")) {
      if (!test(box.dataset.layer)) continue;
      box.checked = on;
      if (on) checked.add(box.dataset.layer); else checked.delete(box.dataset.layer);
    }
    render();
  }

  $("title").textContent = D.title;
  $("subtitle").textContent = D.subtitle;
  for (const name of Object.keys(D.metrics)) {
    const option = document.createElement("option");
    option.value = name; option.textContent = name;
    picker.appendChild(option);
  }
  picker.value = D.metric;
  logBox.checked = D.logx;
  buildLegend();
  picker.addEventListener("change", render);
  logBox.addEventListener("change", render);
  filter.addEventListener("input", () => {
    const test = matcher(filter.value);
    for (const li of legend.children) li.classList.toggle("hidden", !test(li.dataset.layer));
    render();
  });
  $("show-all").addEventListener("click", () => setAll(true));
  $("show-none").addEventListener("click", () => setAll(false));
  render();
})();
</script>
</body>
</html>
"""
