// hpostore dashboard: polls the read-only JSON API and draws with the bundled plotly.js.
// Data from the log (study names, messages) is only ever set as text, never as HTML.
"use strict";

const POLL_MS = 1000;          // new events are looked for every second
const STUDIES_EVERY_MS = 5000; // the studies list is refreshed at least this often
const state = {
  study: null, lastSeq: 0, overlay: new Set(), page: null,
  sort: { column: "trial", dir: 1 }, studiesAt: 0, contourPick: null,
};
// plotly's default colours, assigned here so that a band's fill matches its median line
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf"];
function rgba(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${alpha})`;
}

function api(path) {
  return fetch(path, { credentials: "same-origin", cache: "no-store" }).then(async (r) => {
    const body = await r.json().catch(() => ({ error: r.statusText }));
    if (!r.ok) throw Object.assign(new Error(body.error || r.statusText), { status: r.status });
    return body;
  });
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function fmt(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  return String(v);
}

function setLive(text, cls) {
  const live = document.getElementById("live");
  live.textContent = text;
  live.className = "live " + (cls || "");
}

// ---- studies list ---------------------------------------------------------------------
async function loadStudies() {
  const data = await api("/api/studies");
  state.studiesAt = Date.now();
  document.getElementById("source").textContent = data.source;
  const body = document.querySelector("#studies tbody");
  body.replaceChildren();
  for (const s of data.studies) {
    const tr = el("tr");
    tr.dataset.study = s.study;
    if (s.study === state.study) tr.classList.add("selected");
    const box = el("input");
    box.type = "checkbox";
    box.checked = state.overlay.has(s.study);
    box.addEventListener("click", (ev) => {
      ev.stopPropagation();
      if (box.checked) state.overlay.add(s.study); else state.overlay.delete(s.study);
      drawAnytime();
    });
    const cell = el("td"); cell.appendChild(box); tr.appendChild(cell);
    tr.appendChild(el("td", s.study));
    tr.appendChild(el("td", s.status, "status-" + s.status));
    for (const k of ["trials", "finished", "failed", "best_error", "elapsed_s"]) {
      tr.appendChild(el("td", fmt(s[k]), "num"));
    }
    tr.appendChild(el("td", [s.searcher, s.scheduler].filter(Boolean).map((c) => c.split(".").pop()).join(" + ")));
    tr.addEventListener("click", () => openStudy(s.study));
    body.appendChild(tr);
  }
  if (!state.study && data.studies.length) {
    const wanted = decodeURIComponent((location.hash.match(/^#study=(.*)$/) || [])[1] || "");
    const pick = data.studies.find((s) => s.study === wanted) || data.studies[data.studies.length - 1];
    openStudy(pick.study);
  }
}

// ---- one study ------------------------------------------------------------------------
async function openStudy(name) {
  if (name !== state.study) state.contourPick = null;
  state.study = name;
  state.lastSeq = 0;
  state.overlay.add(name);
  history.replaceState(null, "", "#study=" + encodeURIComponent(name));
  for (const tr of document.querySelectorAll("#studies tbody tr")) {
    tr.classList.toggle("selected", tr.dataset.study === name);
    const box = tr.querySelector("input"); if (box) box.checked = state.overlay.has(tr.dataset.study);
  }
  await loadStudy();
}

async function loadStudy() {
  const name = state.study;
  const page = await api("/api/studies/" + encodeURIComponent(name));
  if (name !== state.study) return;
  state.page = page;
  state.lastSeq = Math.max(state.lastSeq, page.info.last_seq);
  document.getElementById("study-panel").hidden = false;
  document.getElementById("study-title").textContent = name;
  const i = page.info;
  document.getElementById("study-info").textContent =
    `${i.status} · ${i.trials} trials: ` +
    ["finished", "paused", "stopped", "failed", "interrupted", "running"].filter((k) => i[k]).map((k) => `${i[k]} ${k}`).join(", ") + " · " +
    `best ${fmt(i.best_error)} · ${fmt(i.elapsed_s)} s · ` +
    (page.pareto ? page.pareto.objectives.map((o) => `${o.metric} (${o.mode})`).join(", ") : `${i.metric || "error"} (${i.mode || "min"})`) + " · " +
    `${i.events} events, last seq ${i.last_seq}`;
  drawTrials(); drawCurves(); drawTimeline(); drawImportance(); drawParcoords(); drawSlices();
  drawPareto();
  await drawContour();
  await drawAnytime();
}

const LAYOUT = { margin: { l: 55, r: 15, t: 10, b: 40 }, hovermode: "closest", showlegend: false };
const CONFIG = { displaylogo: false, responsive: true };
function plot(id, traces, layout) {
  if (!window.Plotly) return;
  const full = Object.assign({}, LAYOUT, layout);
  if (!traces.some((t) => (t.x || []).length)) {  // say so instead of drawing empty axes
    Object.assign(full, { xaxis: { visible: false }, yaxis: { visible: false }, showlegend: false,
      annotations: [{ text: "no results yet", showarrow: false, font: { size: 14, color: "#888" } }] });
  }
  Plotly.react(id, traces, full, CONFIG);
}
function yTitle() {  // a multi-objective study's error column is its first objective
  const i = state.page.info, p = state.page.pareto;
  return p ? p.objectives[0].metric : (i.metric || "error");
}

// the latest anytime request: an answer to an earlier one (two checkboxes ticked in quick
// succession, a poll meanwhile) arrives late and must not replace the newer chart
let anytimeRequest = 0;

async function drawAnytime() {
  if (!state.page) return;
  const names = [...state.overlay].slice(0, 12);
  if (!names.includes(state.study)) names.unshift(state.study);
  const xKey = document.getElementById("anytime-x").value;
  const query = names.map((n) => "study=" + encodeURIComponent(n)).join("&") + "&x=" + xKey;
  const request = ++anytimeRequest;
  let data;
  try { data = await api("/api/anytime?" + query); } catch (e) { return; }
  if (request !== anytimeRequest) return;
  // studies that repeat one setup (seeds) are drawn as their median and 25-75% band
  const banded = new Set(data.bands.flatMap((b) => b.studies));
  const traces = [];
  data.bands.forEach((b, k) => {
    // from where every study of the group has a result (a median of fewer would jump there)
    const most = Math.max(...b.n_studies), first = b.n_studies.findIndex((n) => n === most && n > 0);
    const color = COLORS[k % COLORS.length];
    if (first < 0) return;
    const x = b.x.slice(first), cut = (a) => a.slice(first), q = b.quantiles.map((v) => v * 100);
    const band = { x, mode: "lines", line: { shape: "hv", width: 0 }, hoverinfo: "skip", showlegend: false };
    traces.push(Object.assign({ y: cut(b.q_low) }, band));
    traces.push(Object.assign({ y: cut(b.q_high), fill: "tonexty", fillcolor: rgba(color, 0.2) }, band));
    traces.push({ x, y: cut(b.median), mode: "lines", line: { shape: "hv", color, width: 2 },
      name: `${b.group}: median of ${b.studies.length}, ${q[0]}–${q[1]}%`,
      text: cut(b.n_studies).map((n) => `median of ${n} studies`) });
  });
  data.curves.filter((c) => !banded.has(c.study)).forEach((c, k) => {
    const x = c[xKey].slice(), y = c.best_error.slice();
    const end = xKey === "elapsed" ? c.end_elapsed : c.end_finished;
    if (y.length && end !== null && end > x[x.length - 1]) { x.push(end); y.push(y[y.length - 1]); }
    traces.push({ x, y, name: c.study, mode: "lines+markers", line: { shape: "hv", color: COLORS[(data.bands.length + k) % COLORS.length] },
      marker: { size: 4 }, text: c.trial.map((t) => "trial " + t).concat(["now"]) });
  });
  plot("chart-anytime", traces, { showlegend: names.length > 1, legend: { orientation: "h", y: -0.25 },
    xaxis: { title: { text: xKey === "elapsed" ? "study time (s)" : "results" } }, yaxis: { title: { text: "best " + yTitle() } } });
}

function drawCurves() {
  const c = state.page.curves;
  document.getElementById("curves-caption").textContent =
    `Learning curves (${c.lines.length} of ${c.total} trials: the best and the most recent) · ` +
    "× stop, ▲ promote, ○ pause";
  const traces = c.lines.map((l) => ({ x: l.x, y: l.y, mode: "lines+markers", name: "trial " + l.trial,
    line: { width: 1 }, marker: { size: 3 }, hovertemplate: "trial " + l.trial + "<br>%{x}: %{y}<extra></extra>" }));
  const symbols = { stop: "x", promote: "triangle-up", pause: "circle-open" };
  for (const kind of Object.keys(symbols)) {
    const m = c.marks.filter((k) => k.decision === kind);
    if (!m.length) continue;
    traces.push({ x: m.map((k) => k.x), y: m.map((k) => k.y), mode: "markers", name: kind,
      marker: { symbol: symbols[kind], size: 9, color: "#333" },
      text: m.map((k) => `${kind} trial ${k.trial}: ${k.reason || ""}`), hoverinfo: "text" });
  }
  plot("chart-curves", traces, { xaxis: { title: { text: "resource" } }, yaxis: { title: { text: yTitle() } } });
}

function drawTimeline() {
  const t = state.page.timeline;
  document.getElementById("timeline-caption").textContent =
    `Worker timeline (${t.bars.length} of ${t.total} attempts): which trial ran where and when`;
  const colors = { evaluate: "#43a047", fail: "#e53935", stop: "#8d6e63", pause: "#ffb300",
    interrupt: "#9e9e9e", open: "#1e88e5", lost: "#616161" };  // outcome of each attempt
  const traces = Object.keys(colors).map((outcome) => {
    const bars = t.bars.filter((b) => b.outcome === outcome);
    return { type: "bar", orientation: "h", name: outcome, marker: { color: colors[outcome] },
      y: bars.map((b) => b.worker), base: bars.map((b) => b.start),
      x: bars.map((b) => Math.max((b.end === null ? t.end_elapsed : b.end) - b.start, 1e-3)),
      text: bars.map((b) => `trial ${b.trial} (attempt ${b.attempt}): ${outcome}`),
      hoverinfo: "text", textposition: "none" };
  }).filter((tr) => tr.y.length);
  plot("chart-timeline", traces, { barmode: "overlay", showlegend: true, legend: { orientation: "h", y: -0.25 },
    xaxis: { title: { text: "study time (s)" } }, yaxis: { type: "category", automargin: true } });
}

function drawImportance() {
  const imp = state.page.importance;
  document.getElementById("importance-caption").textContent =
    `Hyperparameter importance: share of the error's variance explained by each alone (η², binned means, ${imp.length ? imp[0].n : 0} trials)`;
  const rev = imp.slice().reverse();
  plot("chart-importance", [{ type: "bar", orientation: "h", x: rev.map((r) => r.eta2), y: rev.map((r) => r.param) }],
    { margin: { l: 90, r: 15, t: 10, b: 40 }, xaxis: { title: { text: "η²" }, range: [0, 1] }, yaxis: { automargin: true, ticksuffix: "  " } });
}

// Parallel coordinates drawn as SVG lines (plotly's parcoords needs WebGL through code
// generated at run time, which the page's Content-Security-Policy rightly forbids).
const BANDS = ["#440154", "#46327e", "#365c8d", "#277f8e", "#1fa187", "#4ac16d", "#a0da39", "#fde725"];

function axis(p, values) {
  // values on [0, 1] for one vertical axis, and the labels to write along it
  let v = values, labels;
  if (p.kind === "choice") {
    const names = p.values.map(String), k = Math.max(names.length - 1, 1);
    v = values.map((x) => { const i = names.indexOf(String(x)); return i < 0 ? null : i / k; });
    return { label: p.name, v, labels: names.map((n, i) => [i / k, n]) };
  }
  const f = p.kind === "log" ? (x) => (x > 0 ? Math.log10(x) : null) : (x) => x;
  const num = values.map((x) => (x === null || x === undefined ? null : f(x)));
  const finite = num.filter((x) => x !== null && Number.isFinite(x));
  const lo = Math.min(...finite), hi = Math.max(...finite), span = hi - lo || 1;
  v = num.map((x) => (x === null ? null : (x - lo) / span));
  const shown = (x) => fmt(p.kind === "log" ? Math.pow(10, x) : x);
  labels = finite.length ? [[0, shown(lo)], [1, shown(hi)]] : [];
  return { label: p.name + (p.kind === "log" ? " (log)" : ""), v, labels };
}

function drawParcoords() {
  const pts = state.page.points, params = state.page.params, n = pts.trial.length;
  document.getElementById("parcoords-caption").textContent =
    `Parallel coordinates (${n} most recent trials with a result; colour: rank of ${yTitle()}, best yellow, worst purple)`;
  const axes = params.map((p) => axis(p, pts.params[p.name] || []));
  axes.push(axis({ name: yTitle(), kind: "float" }, pts.error));
  const order = pts.error.map((e, i) => i).sort((i, j) => pts.error[i] - pts.error[j]);
  if (state.page.info.mode === "max") order.reverse();
  const traces = BANDS.map(() => ({ x: [], y: [], mode: "lines", type: "scatter", hoverinfo: "skip",
    line: { width: 1 }, opacity: 0.7, connectgaps: false }));
  order.forEach((i, rank) => {
    const band = BANDS.length - 1 - Math.min(BANDS.length - 1, Math.floor((rank * BANDS.length) / n));
    const t = traces[band];
    axes.forEach((a, k) => { t.x.push(k); t.y.push(a.v[i]); });
    t.x.push(null); t.y.push(null);
  });
  traces.forEach((t, b) => { t.line.color = BANDS[b]; });
  const annotations = [], shapes = [];
  axes.forEach((a, k) => {
    shapes.push({ type: "line", x0: k, x1: k, y0: 0, y1: 1, line: { color: "#555", width: 1 } });
    annotations.push({ x: k, y: 1.12, text: a.label, showarrow: false, font: { size: 12 } });
    for (const [y, text] of a.labels) annotations.push({ x: k, y, text, showarrow: false, xanchor: "right", xshift: -4, font: { size: 10 } });
  });
  plot("chart-parcoords", traces.filter((t) => t.x.length), { annotations, shapes,
    margin: { l: 70, r: 30, t: 30, b: 20 },
    xaxis: { visible: false, range: [-0.3, axes.length - 0.8] }, yaxis: { visible: false, range: [-0.05, 1.18] } });
}

function drawSlices() {
  const pts = state.page.points, box = document.getElementById("slices");
  const ids = new Set(state.page.params.map((p) => "slice-" + p.name.replace(/[^A-Za-z0-9_-]/g, "_")));
  for (const div of [...box.children]) {  // slices of the study shown before
    if (ids.has(div.id)) continue;
    if (window.Plotly) Plotly.purge(div);
    div.remove();
  }
  for (const p of state.page.params) {
    const id = "slice-" + p.name.replace(/[^A-Za-z0-9_-]/g, "_");
    let div = document.getElementById(id);
    if (!div) { div = el("div"); div.id = id; box.appendChild(div); }
    const x = pts.params[p.name] || [];
    plot(id, [{ x: p.kind === "choice" ? x.map(String) : x, y: pts.error, mode: "markers",
      marker: { size: 5, color: pts.trial, colorscale: "Blues" }, text: pts.trial.map((t) => "trial " + t) }],
      { xaxis: { title: { text: p.name }, type: p.kind === "log" ? "log" : (p.kind === "choice" ? "category" : "linear") },
        yaxis: { title: { text: yTitle() } } });
  }
}

// Contour: the mean result over a grid of two numeric hyperparameters, the trials on top.
async function drawContour() {
  const page = state.page, numeric = page.params.filter((p) => ["float", "int", "log"].includes(p.kind));
  const selX = document.getElementById("contour-x"), selY = document.getElementById("contour-y");
  const names = numeric.map((p) => p.name);
  for (const sel of [selX, selY]) {
    if ([...sel.options].map((o) => o.value).join("\n") !== names.join("\n")) {
      sel.replaceChildren(...names.map((n) => Object.assign(el("option", n), { value: n })));
    }
  }
  let data = page.contour;
  if (state.contourPick && data && (state.contourPick[0] !== data.x.name || state.contourPick[1] !== data.y.name)) {
    const [x, y] = state.contourPick, name = state.study;
    try {
      data = await api(`/api/studies/${encodeURIComponent(name)}/contour?x=${encodeURIComponent(x)}&y=${encodeURIComponent(y)}`);
    } catch (e) { data = null; }
    if (name !== state.study) return;
  }
  const caption = document.getElementById("contour-caption");
  if (!data) {
    caption.textContent = "Contour (needs two numeric hyperparameters)";
    plot("chart-contour", [], {});
    return;
  }
  selX.value = data.x.name; selY.value = data.y.name;
  caption.textContent = `Contour: mean ${yTitle()} of ${data.count} trials on a ${data.x.centres.length}×${data.z.length} grid`;
  const pts = page.points, px = pts.params[data.x.name] || [], py = pts.params[data.y.name] || [];
  // the cells' means sit at their centres: the edge cells are repeated out to the grid's
  // outer edges, so that the contour covers every trial drawn on it
  const z = data.z.map((row) => [row[0], ...row, row[row.length - 1]]);
  z.unshift(z[0].slice()); z.push(z[z.length - 1].slice());
  const padded = (a) => [a.range[0], ...a.centres, a.range[1]];
  plot("chart-contour", [
    { type: "contour", x: padded(data.x), y: padded(data.y), z, connectgaps: true,
      colorscale: "Viridis", reversescale: data.mode !== "max", ncontours: 12, line: { width: 0.5 },
      colorbar: { title: { text: yTitle() }, thickness: 12 }, hovertemplate: "%{x}, %{y}: %{z}<extra>mean</extra>" },
    { x: px, y: py, mode: "markers", type: "scatter", marker: { size: 4, color: "#fff", line: { color: "#222", width: 0.7 } },
      text: pts.trial.map((t, i) => `trial ${t}: ${fmt(pts.error[i])}`), hoverinfo: "text" },
  ], { xaxis: { title: { text: data.x.name }, type: data.x.log ? "log" : "linear" },
    yaxis: { title: { text: data.y.name }, type: data.y.log ? "log" : "linear" } });
}

function pickContour() {
  state.contourPick = [document.getElementById("contour-x").value, document.getElementById("contour-y").value];
  if (state.page) drawContour();
}

// Pareto front of a multi-objective study: every result, the non-dominated ones joined.
function drawPareto() {
  const p = state.page.pareto, fig = document.getElementById("pareto-figure");
  fig.hidden = !p;
  if (!p) return;
  const [ox, oy] = p.objectives, n = p.front.trial.length;
  document.getElementById("pareto-caption").textContent =
    `Pareto front: ${n} of ${p.total} results non-dominated` +
    (p.objectives.length > 2 ? ` over all ${p.objectives.length} objectives, drawn on the first two` : "") +
    (p.points.trial.length + n < p.total ? ` (${p.points.trial.length} most recent others shown)` : "");
  const label = (t, i, o) => `trial ${t}: ${ox.metric} ${fmt(o.x[i])}, ${oy.metric} ${fmt(o.y[i])}`;
  const traces = [
    { x: p.points.x, y: p.points.y, mode: "markers", type: "scatter", name: "results",
      marker: { size: 5, color: "#9e9e9e", opacity: 0.6 }, text: p.points.trial.map((t, i) => label(t, i, p.points)), hoverinfo: "text" },
    { x: p.front.x, y: p.front.y, mode: p.objectives.length === 2 ? "lines+markers" : "markers", type: "scatter",
      name: "Pareto front", marker: { size: 8, color: "#d62728" },
      // the staircase bounds what the front dominates: along x first when x is minimised
      line: { shape: ox.mode === "max" ? "vh" : "hv", color: "#d62728", width: 1.5 },
      text: p.front.trial.map((t, i) => label(t, i, p.front)), hoverinfo: "text" },
  ];
  plot("chart-pareto", traces, { showlegend: true, legend: { orientation: "h", y: -0.25 },
    xaxis: { title: { text: `${ox.metric} (${ox.mode})` } }, yaxis: { title: { text: `${oy.metric} (${oy.mode})` } } });
}

// ---- trials table ---------------------------------------------------------------------
function drawTrials() {
  const t = state.page.trials, cols = t.columns;
  document.getElementById("trials-count").textContent = t.rows.length < t.total
    ? `(${t.rows.length} of ${t.total}: the best and the most recent)` : `(${t.total})`;
  const head = document.querySelector("#trials thead tr");
  if (head.children.length !== cols.length || [...head.children].some((th, i) => th.dataset.col !== cols[i])) {
    head.replaceChildren();
    cols.forEach((c) => {
      const th = el("th", c); th.dataset.col = c;
      th.addEventListener("click", () => {
        state.sort = { column: c, dir: state.sort.column === c ? -state.sort.dir : 1 };
        drawTrials();
      });
      head.appendChild(th);
    });
  }
  const statusSel = document.getElementById("trials-status");
  const statuses = [...new Set(t.rows.map((r) => r[1]))].sort();
  for (const s of statuses) {
    if (![...statusSel.options].some((o) => o.value === s)) statusSel.appendChild(Object.assign(el("option", s), { value: s }));
  }
  const needle = document.getElementById("trials-filter").value.toLowerCase();
  const status = statusSel.value;
  const k = cols.indexOf(state.sort.column), dir = state.sort.dir;
  const rows = t.rows.filter((r) => (!status || r[1] === status) &&
    (!needle || r.some((v) => fmt(v).toLowerCase().includes(needle))));
  rows.sort((a, b) => {
    const x = a[k], y = b[k];
    if (x === y) return 0; if (x === null) return 1; if (y === null) return -1;
    return (x < y ? -1 : 1) * dir;
  });
  const body = document.querySelector("#trials tbody");
  const frag = document.createDocumentFragment();
  for (const r of rows) {
    const tr = el("tr");
    r.forEach((v, i) => {
      const cls = cols[i] === "status" ? "status-" + v : (typeof v === "number" ? "num" : (cols[i] === "message" ? "message" : ""));
      const td = el("td", fmt(v), cls);
      if (cols[i] === "message" && v) td.title = v;
      tr.appendChild(td);
    });
    frag.appendChild(tr);
  }
  body.replaceChildren(frag);
}

// ---- live updates ---------------------------------------------------------------------
async function poll() {
  try {
    if (Date.now() - state.studiesAt > STUDIES_EVERY_MS) await loadStudies();
    if (state.study) {
      const name = state.study;
      const ev = await api(`/api/studies/${encodeURIComponent(name)}/events?after=${state.lastSeq}&limit=1`);
      if (name === state.study && ev.last_seq > state.lastSeq) {
        await loadStudy();  // advances state.lastSeq only once the page has been drawn
        await loadStudies();
      }
      setLive(ev.stale ? "log busy: showing the last reading" : `live · seq ${state.lastSeq} · ${new Date().toLocaleTimeString()}`, ev.stale ? "busy" : "");
    }
  } catch (e) {
    setLive(e.status === 503 ? "log busy, retrying…" : "error: " + e.message, e.status === 503 ? "busy" : "error");
  }
  setTimeout(poll, POLL_MS);
}

document.getElementById("anytime-x").addEventListener("change", drawAnytime);
document.getElementById("contour-x").addEventListener("change", pickContour);
document.getElementById("contour-y").addEventListener("change", pickContour);
document.getElementById("trials-filter").addEventListener("input", () => state.page && drawTrials());
document.getElementById("trials-status").addEventListener("change", () => state.page && drawTrials());
poll();
