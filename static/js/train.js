/* The training page. Training step: a batch -> POST /step -> what each of the tutorial's five
 * lines did to it, then many steps on the same batch, and the loss of a fresh Net. Train from
 * scratch: POST /train/live, its Server-Sent Events read from fetch() as they come. */
import {
  s, fmt, el, clear, postForm, plot, color, className, CLASSES, FONT, MONO,
  keptBatch, dataUrlBlob, base64Bytes,
} from "./common.js";
import { stageBars } from "./charts.js";
import { mountWeights } from "./weights.js";

const page = JSON.parse(document.getElementById("train-data").textContent);
const LN10 = Math.log(10);
const q = (role) => document.querySelector('[data-role="' + role + '"]');
const chart = (name) => document.querySelector('[data-chart="' + name + '"]');
const classLabels = () => CLASSES.map((n, c) => c + " " + className(n));

/** A number typed in a field, or null when it is not a finite number. */
function numberIn(input) {
  const text = input.value.trim();
  const v = Number(text);
  return text !== "" && Number.isFinite(v) ? v : null;
}

/** Three significant digits, exponent notation outside [0.001, 10⁴). */
function sig(x) {
  if (x === null || !Number.isFinite(x)) return fmt(x);
  const a = Math.abs(x);
  const text = a === 0 || (a >= 1e-3 && a < 1e4) ? x.toPrecision(3) : x.toExponential(2);
  return text.replace("-", "−");
}

function setStatus(node, text, isError) {
  node.textContent = text;
  node.classList.toggle("error", Boolean(isError));
  node.hidden = !text;
}

/** Largest |a - b| over two equally shaped arrays of numbers (nested or not). */
function maxDiff(a, b) {
  if (Array.isArray(a)) return a.reduce((m, v, i) => Math.max(m, maxDiff(v, b[i])), 0);
  return Math.abs(a - b);
}

/** A row of a .checks list: what was compared, its largest difference, and whether they agree. */
function check(dl, label, diff, tolerance) {
  clear(dl);
  const same = diff <= tolerance;
  dl.append(el("dt", { text: label }));
  dl.append(el("dd", { text: s("tp_max_diff", { d: diff === 0 ? "0" : diff.toExponential(1) }) }));
  dl.append(el("dd", { class: "verdict " + (same ? "ok" : "bad"), text: same ? "✓ " + s("agree") : "✗ " + s("differ") }));
}

/** A legend above the plot, in as many rows as it needs (the margin leaves room for two). */
const LEGEND = { orientation: "h", x: 0, y: 1.02, xanchor: "left", yanchor: "bottom" };
const HEAT = [[0, "#2f5fb3"], [0.5, "#ffffff"], [1, "#b42318"]];

function heatmap(div, z, x, y, height, extra) {
  const top = Math.max(...z.flat().map(Math.abs)) || 1;
  plot(div, [{
    type: "heatmap", z: z, x: x, y: y, colorscale: HEAT, zmid: 0, zmin: -top, zmax: top,
    colorbar: { thickness: 12, tickfont: { family: MONO, size: 11 } },
    hovertemplate: "%{y} · %{x}: %{z:.6f}<extra></extra>",
  }], Object.assign({
    height: height,
    margin: { l: 10, r: 10, t: 8, b: 48 },
    xaxis: { type: "category", tickfont: { family: FONT, size: 12 }, tickangle: -40 },
    yaxis: { type: "category", autorange: "reversed", tickfont: { family: FONT } },
  }, extra || {}));
}

// --- Training step ------------------------------------------------------------------------------

const stepStatus = document.getElementById("step-status");
const stepResults = document.getElementById("step-results");
const stepLr = document.getElementById("step-lr");
const manyLr = document.getElementById("many-lr");
const manyStatus = document.getElementById("many-status");
const stripEl = document.getElementById("batch-pictures");
const outerPick = document.getElementById("outer-pick");
const softmaxPick = document.getElementById("softmax-pick");
const yoursInput = document.getElementById("source-yours");

/** The batch: [{title, src, blob, label (class index)}], from the gallery or from /upload. */
let batch = [];
let kept = [];
let step = null; // the /step answer of one step
let stepSerial = 0;
let stepAbort = null;
let runs = []; // the "many steps" curves: {name, losses}

async function tutorialBatch() {
  return Promise.all(page.batch.map(async (b) => {
    const r = await fetch(b.url);
    const label = CLASSES.indexOf(b.label);
    return { title: className(b.label), src: b.url, blob: await r.blob(), name: b.name, label: label, fixed: true };
  }));
}

function yoursBatch() {
  return kept.map((it) => ({
    title: it.name, src: it.preview, blob: dataUrlBlob(it.preview), name: it.name,
    label: it.label === null ? it.predicted : it.label, guessed: it.label === null, fixed: false,
  }));
}

function renderStrip() {
  clear(stripEl);
  batch.forEach((b, k) => {
    const parts = [el("img", { src: b.src, alt: s("picture_n", { i: k + 1 }), width: 64, height: 64, class: "pixelated" })];
    if (b.fixed) {
      parts.push(el("span", { class: "strip-label", text: (k + 1) + " · " + className(CLASSES[b.label]) }));
    } else {
      const id = "yours-label-" + k;
      const select = el("select", { id: id });
      CLASSES.forEach((name, c) => select.append(el("option", { value: String(c), text: c + " " + className(name) })));
      select.value = String(b.label);
      select.addEventListener("change", () => {
        b.label = Number(select.value);
        b.guessed = false;
        note.hidden = true;
        runStep(true);
      });
      const note = el("span", { class: "hint", text: s("tp_guess"), hidden: !b.guessed });
      parts.push(el("label", { for: id, class: "strip-label" }, [
        el("span", { class: "strip-name", text: (k + 1) + ". " + b.name }), select,
      ]), note);
    }
    stripEl.append(el("li", null, parts));
  });
}

/** /step's form for this batch; labels as class indices. */
function stepForm(fields) {
  const form = new FormData();
  for (const b of batch) {
    form.append("image", b.blob, b.name);
    form.append("label", String(b.label));
  }
  for (const [k, v] of Object.entries(fields)) form.append(k, String(v));
  return form;
}

/** POST /step for this batch: from your weights file where one is chosen (a fresh Net never: it
 * is made by the seed), else from the served weights, which the server also uses when your file
 * is refused (the refusal then shows beside the picker). */
async function postStep(fields, signal) {
  const form = stepForm(fields);
  const yours = fields.init === "fresh" ? null : await weights.post("/step", form, signal);
  return yours || postForm("/step", form, signal);
}

function readLr(input, statusEl) {
  const lr = numberIn(input);
  const ok = lr !== null && lr > 0;
  input.setAttribute("aria-invalid", String(!ok));
  if (!ok) setStatus(statusEl, s("tp_lr_invalid"), true);
  return ok ? lr : null;
}

/** The five lines once at the chosen lr; with `fresh`, also a fresh Net's loss on the batch. */
async function runStep(fresh) {
  const lr = readLr(stepLr, stepStatus);
  if (lr === null || !batch.length) return;
  if (stepAbort) stepAbort.abort();
  stepAbort = new AbortController();
  const mine = ++stepSerial;
  setStatus(stepStatus, s("loading"));
  try {
    const served = postStep({ lr: lr, steps: 1 }, stepAbort.signal);
    const init = fresh ? postStep({ init: "fresh", seed: 0, steps: 1 }, stepAbort.signal) : null;
    const [answer, freshAnswer] = await Promise.all([served, init]);
    if (mine !== stepSerial) return;
    step = answer;
    setStatus(stepStatus, "");
    stepResults.hidden = false;
    renderStep();
    if (freshAnswer) renderInit(freshAnswer);
    q("trained-loss").textContent = fmt(step.losses[0]);
    q("trained-name").textContent = answer.weights_source === "upload" ? s("tp_trained_yours") : s("tp_trained_served");
  } catch (e) {
    if (e.name === "AbortError") return;
    setStatus(stepStatus, e.message, true);
  }
}

/** Short names of the batch's pictures for tables and charts: number and true class (file
 * names stay out of the charts, whose labels plotly.js reads as a little HTML). */
function pictureNames() {
  return batch.map((b, k) => (k + 1) + " · " + className(CLASSES[b.label]));
}

function renderOutputs() {
  const table = q("outputs");
  const head = clear(table.tHead);
  head.append(el("tr", null, [
    el("th", { scope: "col", text: s("tp_picture") }),
    ...CLASSES.map((n, c) => el("th", { scope: "col", text: c + " " + className(n) })),
  ]));
  const body = clear(table.tBodies[0]);
  const names = pictureNames();
  step.before.logits.forEach((row, i) => {
    const pred = step.before.predicted[i];
    body.append(el("tr", null, [
      el("th", { scope: "row", text: names[i] }),
      ...row.map((v, c) => el("td", {
        text: fmt(v, 2),
        class: [c === pred ? "is-pred" : "", c === batch[i].label ? "is-true" : ""].join(" ").trim() || null,
      })),
    ]));
  });
}

function renderLoss() {
  const per = step.before.per_element_loss;
  const out = q("loss");
  out.textContent = fmt(step.losses[0]);
  out.dataset.value = String(step.losses[0]);
  q("loss-formula").textContent = s("batch_formula_mean", { terms: per.map((v) => fmt(v)).join(" + "), n: per.length }) + " = " + fmt(step.before.loss);
  q("mistake").textContent = step.criterion_mistake;
}

function renderBackward() {
  const n = step.grad_logits.length;
  const names = pictureNames();
  const labels = classLabels();
  const rowsH = (rows) => 70 + 26 * rows;
  heatmap(chart("grad-logits"), step.grad_logits, labels, names, Math.max(200, rowsH(n) + 40));
  // (softmax - one-hot) / N, from the forward pass's softmax: what autograd should have found.
  const expected = step.before.softmax.map((p, i) => p.map((v, c) => (v - (c === batch[i].label ? 1 : 0)) / n));
  check(q("check-logits"), s("tp_check_logits"), maxDiff(step.grad_logits, expected), 1e-6);

  const sums = labels.map((_, c) => step.grad_logits.reduce((a, row) => a + row[c], 0));
  const bias = step.grads["fc3.bias"];
  plot(chart("bias-grad"), [
    { type: "bar", name: "fc3.bias.grad", x: labels, y: bias, marker: { color: color("grad") }, hovertemplate: "%{x}: %{y:.6f}<extra>fc3.bias.grad</extra>" },
    { type: "bar", name: s("tp_column_sums"), x: labels, y: sums, marker: { color: color("grad") + "55", line: { color: color("grad"), width: 2 } }, hovertemplate: "%{x}: %{y:.6f}<extra>Σ</extra>" },
  ], {
    height: 320, barmode: "group", showlegend: true, legend: LEGEND,
    xaxis: { type: "category", tickangle: -40, tickfont: { family: FONT } }, margin: { t: 60, b: 90 },
  });
  check(q("check-bias"), s("tp_check_bias"), maxDiff(bias, sums), 1e-6);

  clear(outerPick);
  outerPick.append(el("option", { value: "sum", text: s("tp_outer_sum") }));
  names.forEach((name, i) => outerPick.append(el("option", { value: String(i), text: s("tp_outer_one", { i: name }) })));
  renderOuter();
  const total = outer(null);
  check(q("check-weight"), s("tp_check_weight"), maxDiff(step.grads["fc3.weight"], total), 1e-6);

  const norms = step.grad_norms;
  const names_ = Object.keys(norms);
  const logs = names_.map((k) => Math.log10(norms[k])).filter(Number.isFinite);
  plot(chart("grad-norms"), [{
    type: "bar", orientation: "h", y: names_, x: names_.map((k) => norms[k]),
    marker: { color: color("grad") }, text: names_.map((k) => sig(norms[k])), textposition: "outside",
    cliponaxis: false, textfont: { family: MONO, size: 12 }, hovertemplate: "%{y}: %{x:.6g}<extra></extra>",
  }], {
    height: 60 + 30 * names_.length,
    margin: { l: 10, r: 60, t: 8, b: 44 },
    xaxis: {
      type: "log", title: { text: s("tp_norm_axis") }, dtick: 1, exponentformat: "power",
      range: [Math.floor(Math.min(...logs)), Math.ceil(Math.max(...logs)) + 0.3],
    },
    yaxis: { type: "category", autorange: "reversed", tickfont: { family: MONO } },
  });
}

/** Σ over the pictures (or picture i alone) of grad_logits[i] ⊗ activations[i]: 10 × 84. */
function outer(i) {
  const picked = i === null ? step.grad_logits.map((_, k) => k) : [i];
  return CLASSES.map((_, c) => step.activations[0].map((__, j) =>
    picked.reduce((a, k) => a + step.grad_logits[k][c] * step.activations[k][j], 0)));
}

function renderOuter() {
  const pick = outerPick.value;
  const z = pick === "sum" ? step.grads["fc3.weight"] : outer(Number(pick));
  const inputs = step.activations[0].map((_, j) => String(j));
  heatmap(chart("weight-grad"), z, inputs, classLabels(), 330, {
    xaxis: { type: "category", title: { text: s("tp_fc3_inputs") }, showticklabels: false },
  });
}
outerPick.addEventListener("change", renderOuter);

function renderUpdate() {
  const body = clear(q("norms").tBodies[0]);
  for (const [name, g] of Object.entries(step.grad_norms)) {
    const u = step.update_norms[name];
    body.append(el("tr", null, [
      el("th", { scope: "row", text: name }),
      el("td", { text: sig(g) }),
      el("td", { text: sig(u) }),
      el("td", { text: g > 0 ? fmt(u / (step.lr * g)) : "—" }),
    ]));
  }
  const table = q("before-after");
  clear(table.tHead).append(el("tr", null, [
    s("tp_picture"), s("true_label"), s("tp_p_true_before"), s("tp_p_true_after"), s("tp_pred_before"), s("tp_pred_after"),
  ].map((t) => el("th", { scope: "col", text: t }))));
  const body2 = clear(table.tBodies[0]);
  const names = pictureNames();
  batch.forEach((b, i) => {
    const before = step.before.softmax[i][b.label];
    const after = step.after.softmax[i][b.label];
    body2.append(el("tr", null, [
      el("th", { scope: "row", text: names[i] }),
      el("td", { class: "text", text: className(CLASSES[b.label]) }),
      el("td", { text: fmt(before) }),
      el("td", { text: fmt(after), class: after > before ? "ok" : after < before ? "bad" : null }),
      el("td", { class: "text", text: className(CLASSES[step.before.predicted[i]]) }),
      el("td", { class: "text", text: className(CLASSES[step.after.predicted[i]]) }),
    ]));
  });
  const keep = softmaxPick.value;
  clear(softmaxPick);
  names.forEach((name, i) => softmaxPick.append(el("option", { value: String(i), text: name })));
  softmaxPick.value = keep && Number(keep) < names.length ? keep : "0";
  renderSoftmax();
  const before = step.losses[0];
  const after = step.losses[1];
  const out = q("loss-after");
  out.textContent = fmt(after);
  out.dataset.value = String(after);
  const fell = after !== null && after < before;
  const values = { before: fmt(before), after: fmt(after) };
  q("loss-change").textContent = fell ? s("tp_loss_fell", values) : s("tp_loss_rose", values);
}

function renderSoftmax() {
  const i = Number(softmaxPick.value);
  const labels = classLabels();
  const target = batch[i].label;
  const c = color("softmax");
  const outline = { color: labels.map((_, k) => (k === target ? color("nll") : c)), width: labels.map((_, k) => (k === target ? 3 : 1)) };
  plot(chart("softmax-ba"), [
    { type: "bar", name: s("tp_before"), x: labels, y: step.before.softmax[i], marker: { color: c + "55", line: outline }, hovertemplate: "%{x}: %{y:.6f}<extra></extra>" },
    { type: "bar", name: s("tp_after"), x: labels, y: step.after.softmax[i], marker: { color: c, line: outline }, hovertemplate: "%{x}: %{y:.6f}<extra></extra>" },
  ], {
    height: 320, barmode: "group", showlegend: true, legend: LEGEND,
    xaxis: { type: "category", tickangle: -40, tickfont: { family: FONT } },
    yaxis: { range: [0, 1.05], title: { text: "p" } }, margin: { t: 60, b: 90 },
  });
}
softmaxPick.addEventListener("change", renderSoftmax);

function renderStep() {
  renderOutputs();
  renderLoss();
  renderBackward();
  renderUpdate();
}

function renderInit(fresh) {
  const out = q("fresh-loss");
  out.textContent = fmt(fresh.losses[0]);
  out.dataset.value = String(fresh.losses[0]);
  stageBars(chart("fresh-softmax"), classLabels(), fresh.before.softmax[0], "softmax", batch[0].label, {
    line: { x: 0.1, label: "1/10", color: color("nll") },
  });
}

// Many steps on the batch.

/** Which way the losses went, and why, as one sentence. */
function verdict(losses) {
  const first = losses[0];
  const bad = losses.findIndex((v) => v === null);
  if (bad >= 0) return ["bad", s("tp_v_diverged", { step: bad })];
  const last = losses[losses.length - 1];
  const peak = Math.max(...losses);
  if (peak > Math.max(2 * first, first + 1)) return ["bad", s("tp_v_unstable", { peak: fmt(peak), last: fmt(last) })];
  if (last >= first) return ["bad", s("tp_v_rose", { first: fmt(first), last: fmt(last) })];
  if (last < 0.1 * first || last < 0.01) return ["ok", s("tp_v_overfit", { first: fmt(first), last: fmt(last), n: losses.length - 1 })];
  return ["slow", s("tp_v_slow", { first: fmt(first), last: fmt(last) })];
}

function drawRuns() {
  if (stepResults.hidden) return; // drawn once the section shows, at its real width
  const palette = ["#1d3a8a", "#b42318", "#23783a", "#9a6100", "#6741d9"];
  plot(chart("many"), runs.map((r, k) => ({
    type: "scatter", mode: "lines+markers", name: r.name,
    x: r.losses.map((_, i) => i), y: r.losses.map((v) => (v === null || v <= 0 ? null : v)),
    line: { color: palette[k % palette.length], width: 2 }, marker: { size: 4 },
    hovertemplate: "%{x}: %{y:.6g}<extra>" + r.name + "</extra>",
  })), {
    height: 360, showlegend: true, legend: LEGEND,
    xaxis: { title: { text: s("tp_steps_axis") }, rangemode: "tozero" },
    yaxis: { type: "log", title: { text: s("tp_loss_axis") }, exponentformat: "power" },
    margin: { t: 60 },
  });
}

async function runMany(n, buttons) {
  const lr = readLr(manyLr, manyStatus);
  if (lr === null || !batch.length) return;
  buttons.forEach((b) => { b.disabled = true; });
  setStatus(manyStatus, s("tp_running", { n: n }));
  try {
    const answer = await postStep({ lr: lr, steps: n });
    runs = runs.concat([{ name: s("tp_run_name", { lr: lr, n: n }), losses: answer.losses }]).slice(-5);
    drawRuns();
    const [kind, text] = verdict(answer.losses);
    const out = q("verdict");
    out.textContent = text;
    out.className = "verdict-text is-" + kind;
    out.dataset.kind = kind;
    out.dataset.last = String(answer.losses[answer.losses.length - 1]);
    setStatus(manyStatus, "");
  } catch (e) {
    setStatus(manyStatus, e.message, true);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

const manyButtons = Array.from(document.querySelectorAll("[data-steps]"));
for (const b of manyButtons) b.addEventListener("click", () => runMany(Number(b.dataset.steps), manyButtons));
document.getElementById("many-clear").addEventListener("click", () => {
  runs = [];
  drawRuns();
  const out = q("verdict");
  out.textContent = "";
  delete out.dataset.kind;
});

async function useSource(name) {
  batch = name === "yours" ? yoursBatch() : await tutorialBatch();
  renderStrip();
  runs = [];
  drawRuns();
  q("verdict").textContent = "";
  await runStep(true);
}

function offerKept() {
  kept = keptBatch();
  yoursInput.disabled = kept.length === 0;
  q("yours-label").textContent = kept.length ? s("tp_yours_n", { n: kept.length }) : s("tp_yours_none");
}

for (const radio of document.querySelectorAll('input[name="batch-source"]')) {
  radio.addEventListener("change", () => {
    if (radio.checked) useSource(radio.value).catch((e) => setStatus(stepStatus, e.message, true));
  });
}
let lrTimer = 0;
stepLr.addEventListener("input", () => {
  clearTimeout(lrTimer);
  lrTimer = setTimeout(() => runStep(false), 250);
});

// --- Train from scratch -------------------------------------------------------------------------

const form = document.getElementById("live-form");
const startButton = document.getElementById("live-start");
const stopButton = document.getElementById("live-stop");
const progress = document.getElementById("live-progress");
const progressText = q("live-progress-text");
const liveStatus = document.getElementById("live-status");
const lossDiv = chart("live-loss");
const epochsBody = document.querySelector("#live-epochs-table tbody");
const samplesEl = document.getElementById("live-samples");
const doneEl = document.getElementById("live-done");
const download = document.getElementById("live-download");

const FIELDS = [
  { id: "live-epochs", key: "epochs", min: 1, max: 20, integer: true, message: s("tl_err_epochs") },
  { id: "live-batch", key: "batch_size", min: 1, max: 512, integer: true, message: s("tl_err_batch") },
  { id: "live-lr", key: "lr", above: 0, message: s("tl_err_lr") },
];

/** The options from the form, or null (each wrong field says why, beside it). */
function readOptions() {
  const options = {};
  let firstBad = null;
  for (const f of FIELDS) {
    const input = document.getElementById(f.id);
    const v = numberIn(input);
    const ok = v !== null && (f.integer ? Number.isInteger(v) && v >= f.min && v <= f.max : v > f.above);
    input.setAttribute("aria-invalid", String(!ok));
    document.querySelector('[data-error-for="' + f.id + '"]').textContent = ok ? "" : f.message;
    if (ok) options[f.key] = v;
    else if (!firstBad) firstBad = input;
  }
  if (firstBad) {
    firstBad.focus();
    return null;
  }
  return options;
}

/** Server-Sent Events from a byte stream: calls onEvent(name, data) per event, as the
 * specification parses them (lines end in CR LF, LF or CR; a blank line ends an event; a line
 * that starts with ":" is a comment). EventSource would do this, but it can only GET, and it
 * reconnects on its own, which here would start a new job. */
async function readEvents(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let rest = "";
  let name = "";
  let data = [];
  const line = (text) => {
    if (text === "") {
      if (data.length) onEvent(name || "message", data.join("\n"));
      name = "";
      data = [];
      return;
    }
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
  };
  for (;;) {
    const { value, done } = await reader.read();
    rest += done ? decoder.decode() : decoder.decode(value, { stream: true });
    // A CR at the very end may be the first half of a CR LF: keep it for the next chunk.
    const cut = !done && rest.endsWith("\r") ? rest.length - 1 : rest.length;
    const lines = rest.slice(0, cut).split(/\r\n|\r|\n/);
    rest = lines.pop() + rest.slice(cut);
    lines.forEach(line);
    if (done) return;
  }
}

let job = null; // {abort, total, epochs, pending: {x, y}, timer, lastDraw, step, finished}
let weightsUrl = null;

function progressLine(stepNo, epoch, seconds) {
  progress.max = job.total;
  progress.value = stepNo;
  progressText.textContent = s("tl_progress", { step: stepNo, total: job.total, epoch: epoch, epochs: job.epochs, seconds: seconds.toFixed(1) });
}

function drawLossChart() {
  plot(lossDiv, [{
    type: "scatter", mode: "lines", x: [], y: [], line: { color: color("nll"), width: 1.5 },
    hovertemplate: s("tl_step_axis") + " %{x}: %{y:.4f}<extra></extra>",
  }], {
    height: 340,
    xaxis: { title: { text: s("tl_step_axis") }, range: [0, job.total], rangemode: "tozero" },
    yaxis: { title: { text: s("tl_loss_axis") }, rangemode: "tozero", autorange: true },
    shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: LN10, y1: LN10, line: { color: color("onehot"), dash: "dash", width: 2 } }],
    annotations: [{
      xref: "paper", x: 0.01, xanchor: "left", y: LN10, yanchor: "bottom", yshift: 2, showarrow: false,
      text: s("tl_chance_line"), font: { family: FONT, size: 13, color: color("onehot") },
      bgcolor: "rgba(255,255,255,0.85)",
    }],
  });
}

/** New batch losses wait here and are drawn at most every DRAW_MS, whatever the event rate. */
const DRAW_MS = 250;
function queueLosses(first, losses) {
  losses.forEach((v, k) => {
    job.pending.x.push(first + k);
    job.pending.y.push(v === null ? null : v);
  });
  if (job.timer) return;
  const wait = Math.max(0, DRAW_MS - (performance.now() - job.lastDraw));
  const mine = job;
  mine.timer = setTimeout(() => requestAnimationFrame(() => flush(mine)), wait);
}

function flush(which) {
  clearTimeout(which.timer);
  which.timer = 0;
  which.lastDraw = performance.now();
  if (!which.pending.x.length || !window.Plotly || !lossDiv.data) return;
  // window.Plotly: the vendored plotly.js; extendTraces appends without redrawing the rest.
  window.Plotly.extendTraces(lossDiv, { x: [which.pending.x], y: [which.pending.y] }, [0]);
  lossDiv.dataset.points = String(lossDiv.data[0].x.length);
  which.pending = { x: [], y: [] };
  progressLine(which.step, which.epoch, which.seconds);
}

function renderSamples(samples, caption) {
  q("samples-epoch").textContent = caption;
  const byIndex = {};
  for (const sample of samples) byIndex[sample.index] = sample;
  if (!samplesEl.children.length) {
    for (const sample of samples) {
      const bars = el("ol", { class: "prob-bars" });
      CLASSES.forEach((name, c) => {
        bars.append(el("li", { class: c === sample.label ? "is-true" : null }, [
          el("span", { class: "prob-name", text: className(name) }),
          el("span", { class: "prob-track" }, [el("span", { class: "prob-fill" })]),
          el("span", { class: "prob-value mono" }),
        ]));
      });
      samplesEl.append(el("li", { class: "sample", dataset: { index: String(sample.index) } }, [
        el("figure", null, [
          el("img", { src: sample.image, alt: className(CLASSES[sample.label]), width: 64, height: 64, class: "pixelated" }),
          el("figcaption", { text: s("tl_true_class", { name: className(CLASSES[sample.label]) }) }),
        ]),
        bars,
      ]));
    }
  }
  for (const li of samplesEl.children) {
    const sample = byIndex[li.dataset.index];
    if (!sample) continue;
    const top = sample.softmax.indexOf(Math.max(...sample.softmax));
    Array.from(li.querySelectorAll(".prob-bars li")).forEach((row, c) => {
      const p = sample.softmax[c];
      row.querySelector(".prob-fill").style.width = (100 * p).toFixed(1) + "%";
      row.querySelector(".prob-value").textContent = (100 * p).toFixed(1) + "%";
      row.classList.toggle("is-top", c === top);
    });
  }
}

/** A row of the accuracy table, and the accuracy chart with it (epoch 0: the untrained Net). */
function epochRow(epoch, label, acc, loss) {
  epochsBody.append(el("tr", null, [
    el("th", { scope: "row", text: label }),
    el("td", { text: (100 * acc).toFixed(1) + "%" }),
    el("td", { text: fmt(loss) }),
  ]));
  job.accuracy.push([epoch, 100 * acc]);
  plot(chart("live-acc"), [{
    type: "scatter", mode: "lines+markers", x: job.accuracy.map((a) => a[0]), y: job.accuracy.map((a) => a[1]),
    line: { color: color("softmax"), width: 2 }, marker: { size: 8 },
    hovertemplate: "%{x}: %{y:.1f}%<extra></extra>",
  }], {
    height: 220,
    margin: { t: 10, b: 44 },
    xaxis: { title: { text: s("tl_epoch_axis") }, dtick: 1, range: [-0.2, job.epochs + 0.2] },
    yaxis: { title: { text: s("tl_acc_axis") }, range: [0, Math.max(50, ...job.accuracy.map((a) => a[1] + 5))], ticksuffix: "%" },
    shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 10, y1: 10, line: { color: color("onehot"), dash: "dash", width: 2 } }],
  });
}

function onEvent(name, text) {
  const d = JSON.parse(text);
  if (name === "start") {
    job.total = d.total_steps;
    job.epochs = d.epochs;
    drawLossChart();
    progressLine(0, 1, 0);
    epochRow(0, s("tl_untrained"), d.test_accuracy, d.test_loss);
    renderSamples(d.samples, s("tl_samples_untrained"));
    setStatus(liveStatus, s("tl_training"));
    form.dataset.state = "running";
  } else if (name === "progress") {
    Object.assign(job, { step: d.step, epoch: d.epoch, seconds: d.seconds });
    queueLosses(d.step - d.losses.length + 1, d.losses);
  } else if (name === "epoch") {
    epochRow(d.epoch, String(d.epoch), d.test_accuracy, d.test_loss);
    renderSamples(d.samples, s("tl_samples_epoch", { epoch: d.epoch }));
  } else if (name === "done") {
    job.finished = true;
    flush(job);
    progressLine(d.steps, job.epoch || job.epochs, d.seconds);
    const summary = s("tl_done", { steps: d.steps, seconds: d.seconds.toFixed(1), acc: (100 * d.test_accuracy).toFixed(1) + "%" });
    setStatus(liveStatus, d.cut ? summary + " " + s("tl_cut") : summary);
    if (weightsUrl) URL.revokeObjectURL(weightsUrl);
    weightsUrl = URL.createObjectURL(new Blob([base64Bytes(d.weights)], { type: "application/octet-stream" }));
    download.href = weightsUrl;
    doneEl.hidden = false;
  } else if (name === "error") {
    job.finished = true;
    setStatus(liveStatus, s("error", { detail: d.detail }), true);
  }
}

/** idle, starting (the request is out) or running (the job has started). */
function running(on) {
  startButton.disabled = on;
  stopButton.disabled = !on;
  form.dataset.state = on ? "starting" : "idle";
}

async function startJob(options) {
  const abort = new AbortController();
  job = { abort: abort, total: 1, epochs: options.epochs, pending: { x: [], y: [] }, accuracy: [], timer: 0, lastDraw: 0, step: 0, epoch: 1, seconds: 0, finished: false };
  const mine = job;
  clear(epochsBody);
  clear(samplesEl);
  doneEl.hidden = true;
  progress.value = 0;
  progressText.textContent = s("tl_starting");
  setStatus(liveStatus, s("tl_starting_slow"));
  running(true);
  try {
    const response = await fetch("/train/live", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(options),
      signal: abort.signal,
    });
    if (response.status === 429) {
      const wait = Number(response.headers.get("Retry-After")) || 1;
      setStatus(liveStatus, s("tl_busy", { n: wait }), true);
      progressText.textContent = s("tl_not_started");
      return;
    }
    if (!response.ok) {
      let detail = response.status + " " + response.statusText;
      try {
        const body = await response.json();
        if (typeof body.detail === "string") detail = body.detail;
      } catch (e) {
        /* not JSON: keep the status line */
      }
      setStatus(liveStatus, s("error", { detail: detail }), true);
      return;
    }
    await readEvents(response.body, (name, text) => {
      if (job === mine) onEvent(name, text);
    });
    if (!mine.finished) setStatus(liveStatus, s("tl_ended"), true);
  } catch (e) {
    if (e.name === "AbortError") {
      flush(mine);
      setStatus(liveStatus, s("tl_stopped", { step: mine.step }));
    } else {
      setStatus(liveStatus, s("offline"), true);
    }
  } finally {
    if (job === mine) running(false);
  }
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  if (startButton.disabled) return;
  const options = readOptions();
  if (options) startJob(options);
});
stopButton.addEventListener("click", () => {
  if (job) job.abort.abort();
});

// a weights file chosen, forgotten or found kept in this browser: the step runs again from it
const weights = mountWeights(() => {
  if (batch.length) runStep(true);
});
offerKept();
useSource("tutorial").catch((e) => setStatus(stepStatus, e.message, true));
