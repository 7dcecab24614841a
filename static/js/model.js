/* The model card: GET /model -> architecture table, headline numbers and three charts. */
import { s, el, clear, getJSON, plot, color, className, MONO, FONT, CLASSES } from "./common.js";
const status = document.getElementById("model-status");

function stat(name, text) {
  const dd = document.querySelector('[data-stat="' + name + '"]');
  if (dd) dd.textContent = text;
}
function pct(x) {
  return typeof x === "number" ? (x * 100).toFixed(1) + "%" : "—";
}
function shape(v) {
  return Array.isArray(v) ? "(" + v.join(", ") + ")" : v === undefined || v === null ? "" : String(v);
}

function architecture(rows) {
  const body = clear(document.querySelector("#arch-table tbody"));
  for (const r of rows || []) {
    body.append(el("tr", null, [
      el("td", { text: r.name }),
      el("td", { text: r.type }),
      el("td", { text: shape(r.in_shape !== undefined ? r.in_shape : r.input_shape) }),
      el("td", { text: shape(r.out_shape !== undefined ? r.out_shape : r.output_shape) }),
      el("td", { text: Number(r.parameters || 0).toLocaleString("en-US") }),
    ]));
  }
}

function perClass(m) {
  const names = Object.keys(m.per_class_accuracy || {});
  const acc = names.map((n) => m.per_class_accuracy[n]);
  plot(document.querySelector('[data-chart="per-class"]'), [{
    type: "bar", orientation: "h", y: names.map(className), x: acc,
    marker: { color: color("softmax") }, text: acc.map(pct), textposition: "outside", cliponaxis: false,
    textfont: { family: MONO, size: 12 }, hovertemplate: "%{y}: %{x:.3f}<extra></extra>",
  }], {
    height: 380, margin: { l: 10, r: 60, t: 8, b: 40 },
    yaxis: { autorange: "reversed", type: "category", tickfont: { family: FONT } },
    xaxis: { range: [0, 1.12], tickformat: ".0%", title: { text: s("accuracy") + " · ┊ " + s("chance") } },
    shapes: [{ type: "line", yref: "paper", y0: 0, y1: 1, x0: 0.1, x1: 0.1, line: { color: "#8c95a8", dash: "dot", width: 2 } }],
  });
}

function confusion(m, classes) {
  const cm = m.confusion_matrix;
  if (!Array.isArray(cm) || !cm.length) return;
  const names = (classes || []).map(className);
  plot(document.querySelector('[data-chart="confusion"]'), [{
    type: "heatmap", z: cm, x: names, y: names, colorscale: [[0, "#f5f7fb"], [0.15, "#b9c7ee"], [1, "#1d3a8a"]],
    texttemplate: "%{z}", textfont: { family: MONO, size: 12 }, showscale: false, xgap: 1, ygap: 1,
    hovertemplate: s("true_class") + ": %{y}<br>" + s("pred_class") + ": %{x}<br>%{z}<extra></extra>",
  }], {
    height: 560, margin: { l: 10, r: 10, t: 10, b: 10 },
    xaxis: { title: { text: s("pred_class") }, side: "top", type: "category", tickangle: -35, tickfont: { family: FONT } },
    yaxis: { title: { text: s("true_class") }, autorange: "reversed", type: "category", tickfont: { family: FONT } },
  });
}

/** Per-epoch series: {history: {train_loss: [...], ...}} or a list of per-epoch records. */
function series(m) {
  if (m.history && Array.isArray(m.history.train_loss)) return m.history;
  if (Array.isArray(m.epochs)) {
    const pick = (k) => m.epochs.map((e) => (e ? e[k] : null));
    return { train_loss: pick("train_loss"), train_accuracy: pick("train_accuracy"), test_accuracy: pick("test_accuracy") };
  }
  return null;
}

function curves(m) {
  const h = series(m);
  if (!h || !h.train_loss.length) {
    document.querySelector('[data-chart="curves"]').closest(".panel").hidden = true;
    return;
  }
  const x = h.train_loss.map((_, k) => k + 1);
  const traces = [
    { type: "scatter", mode: "lines+markers", name: s("train_loss"), x: x, y: h.train_loss, line: { color: color("nll"), width: 3 } },
    { type: "scatter", mode: "lines+markers", name: s("test_acc"), x: x, y: h.test_accuracy, yaxis: "y2", line: { color: color("softmax"), width: 3 } },
  ];
  if (h.train_accuracy && h.train_accuracy.some((v) => v !== null && v !== undefined)) {
    traces.push({ type: "scatter", mode: "lines", name: s("train_acc"), x: x, y: h.train_accuracy, yaxis: "y2", line: { color: color("softmax"), width: 2, dash: "dot" } });
  }
  plot(document.querySelector('[data-chart="curves"]'), traces, {
    height: 380, showlegend: true, legend: { orientation: "h", y: 1.14, x: 0 }, margin: { t: 40, r: 60 },
    xaxis: { title: { text: s("epoch") }, nticks: 12 },
    yaxis: { title: { text: s("train_loss") }, rangemode: "tozero" },
    yaxis2: { title: { text: s("test_acc") }, overlaying: "y", side: "right", tickformat: ".0%", range: [0, 1], showgrid: false },
  });
}

function training(m) {
  const dl = document.getElementById("training");
  const fields = [
    [s("tr_epochs"), m.epochs],
    [s("tr_batch_size"), m.batch_size],
    [s("tr_lr"), m.lr],
    [s("tr_augmentation"), m.augmentation],
    [s("tr_schedule"), m.schedule],
    [s("tr_train_images"), m.train_images],
    [s("tr_test_images"), m.test_images],
    [s("tr_train_time"), typeof m.train_time_s === "number" ? (m.train_time_s / 60).toFixed(1) + " min" : null],
    [s("tr_trained_on"), m.device],
    [s("tr_torch"), m.torch_version],
    [s("tr_seed"), m.seed],
  ].filter((f) => f[1] !== undefined && f[1] !== null && typeof f[1] !== "object");
  clear(dl);
  for (const [label, v] of fields) {
    dl.append(el("div", null, [el("dt", { text: label }), el("dd", { text: typeof v === "number" ? v.toLocaleString("en-US") : String(v) })]));
  }
  dl.closest(".panel").hidden = fields.length === 0;
}

async function start() {
  const info = await getJSON("/model");
  architecture(info.architecture);
  stat("parameters", Number(info.parameters || 0).toLocaleString("en-US"));
  stat("weights", info.weights || "—");
  stat("device", info.device || "—");
  const m = info.metrics;
  if (!m) {
    stat("accuracy", "—");
    document.getElementById("metrics").hidden = true;
    status.textContent = s("no_metrics");
    return;
  }
  stat("accuracy", pct(m.test_accuracy));
  training(m);
  status.hidden = true;
  perClass(m);
  confusion(m, CLASSES);
  curves(m);
}

start().catch((e) => {
  status.textContent = e.message;
  status.classList.add("error");
});
