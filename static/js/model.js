/* The model card: GET /model -> architecture table, headline numbers and training details;
 * the three figures come with the page. */
import { s, el, clear, getJSON, drawFigure, cardText } from "./common.js";
import { mountCards } from "./weights-views.js";
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

function training(m) {
  const dl = document.getElementById("training");
  const fields = [
    [s("tr_epochs"), m.epochs],
    [s("tr_batch_size"), m.batch_size],
    [s("tr_lr"), m.lr],
    [s("tr_augmentation"), cardText(m.augmentation)],
    [s("tr_schedule"), cardText(m.schedule)],
    [s("tr_train_images"), m.train_images],
    [s("tr_test_images"), m.test_images],
    [s("tr_train_time"), typeof m.train_time_s === "number" ? s("tr_minutes", { n: (m.train_time_s / 60).toFixed(1) }) : null],
    [s("tr_epoch_time"), typeof m.seconds_per_epoch === "number" ? s("tr_seconds", { n: m.seconds_per_epoch.toFixed(1) }) : null],
    [s("tr_trained_on"), m.device],
    [s("tr_threads"), m.torch_threads],
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
}

/** On a phone the confusion matrix's cells are about 20 px wide: its counts and names get
 * smaller, long column names stand upright and the margins shrink, so that each count fits its
 * cell (its text is drawn at a fixed size: plotly does not shrink it to the cell). */
const PHONE = window.matchMedia("(max-width: 600px)");
function forWidth(name, figure) {
  if (name !== "confusion" || !PHONE.matches) return figure;
  const small = { size: 10 };
  const axis = (a) => ({ ...a, tickfont: { ...a.tickfont, size: 10 }, title: { ...a.title, font: { size: 12 } } });
  return {
    data: figure.data.map((t) => ({ ...t, textfont: { ...t.textfont, ...small }, xgap: 0.5, ygap: 0.5 })),
    layout: {
      ...figure.layout, height: 420, margin: { l: 4, r: 4, t: 4, b: 4 },
      // names of two or three characters (Chinese) stay level; longer ones stand upright
      xaxis: { ...axis(figure.layout.xaxis), tickangle: Math.max(...figure.data[0].x.map((x) => String(x).length)) > 3 ? -90 : 0 },
      yaxis: axis(figure.layout.yaxis),
    },
  };
}

/** The figures the server built in Python (app/training/figures.py), from their JSON blocks. */
function drawFigures() {
  for (const div of document.querySelectorAll("[data-figure]")) {
    const name = div.dataset.figure;
    drawFigure(div, forWidth(name, JSON.parse(document.getElementById("figure-" + name).textContent)));
  }
}
drawFigures();
PHONE.addEventListener("change", drawFigures);

mountCards();
start().catch((e) => {
  status.textContent = e.message;
  status.classList.add("error");
});
