/* The stage-by-stage panel shared by the explainer and the upload page.
 * renderStages(res, i, ctx) fills it from a /loss or /predict answer for picture i.
 * ctx: { classes, targets, pictures: [{src, preview, title}], torchOne: number|null,
 *        onPick(i), reduction, weight: [w_c]|undefined, guessed: [bool] (target = prediction) }
 * The texts follow the target: one-hot (a class index) or spread (label smoothing, a probability
 * target), shown by the elements' data-when="onehot" / "spread". */
import { s, fmt, el, clear, fillDl, classBars, plot, color, className, MONO, FONT, sum, product, agree } from "./common.js";

/** True when picture i's target row is not one-hot: every class then counts in the loss. */
function isSpread(y) {
  return y.filter((v) => v !== 0).length > 1 || y.some((v) => v !== 0 && v !== 1);
}

function showTexts(spread) {
  for (const node of document.querySelectorAll("[data-when]")) {
    if (!node.closest(".panel") || !node.closest(".stage-grid, .s-checks, .s-grad")) continue;
    node.hidden = (node.dataset.when === "spread") !== spread;
  }
}

/** −Σ w_c y_c log p_c: the loss of one picture from its target row (w = 1 without weights). */
function fullSum(prod, w) {
  return -sum(prod.map((v, c) => (w ? w[c] * v : v)));
}

function q(role) {
  return document.querySelector('[data-role="' + role + '"]');
}
function chart(name) {
  return document.querySelector('[data-chart="' + name + '"]');
}
function keys(name) {
  return document.querySelector('[data-keys="' + name + '"]');
}

function renderPicker(ctx, i) {
  const box = q("picker");
  if (!box) return;
  if (!ctx.pictures || ctx.pictures.length < 2) {
    clear(box);
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const existing = box.querySelectorAll("button");
  if (existing.length !== ctx.pictures.length || box.dataset.key !== ctx.pickerKey) {
    clear(box);
    box.dataset.key = ctx.pickerKey || "";
    ctx.pictures.forEach((pic, k) => {
      const b = el("button", { type: "button", "aria-pressed": String(k === i) }, [
        el("img", { src: pic.preview || pic.src, alt: "", width: 64, height: 64 }),
        el("span", { text: pic.title }),
      ]);
      b.addEventListener("click", () => ctx.onPick(k));
      box.append(b);
    });
  } else {
    existing.forEach((b, k) => b.setAttribute("aria-pressed", String(k === i)));
  }
}

function renderFocus(res, i, ctx, target, loss) {
  const box = q("focus");
  if (!box) return;
  clear(box);
  const pic = ctx.pictures && ctx.pictures[i];
  if (pic) {
    if (pic.src) {
      box.append(el("figure", null, [
        el("img", { src: pic.src, alt: s("picture_n", { i: i + 1 }), class: "pixelated" }),
        el("figcaption", { text: s("original") }),
      ]));
    }
    if (pic.preview) {
      box.append(el("figure", null, [
        el("img", { src: pic.preview, alt: "32×32", class: "pixelated" }),
        el("figcaption", { text: "32×32" }),
      ]));
    }
  }
  const facts = el("dl", { class: "facts" });
  const pred = res.predicted ? res.predicted[i] : null;
  fillDl(facts, [
    [s("target"), ctx.classes[target] !== undefined ? className(ctx.classes[target]) : "—"],
    [s("predicted"), pred !== null ? className(ctx.classes[pred]) : "—"],
    [s("loss"), fmt(loss), { class: "mono" }],
  ]);
  box.append(facts);
  if (ctx.guessed && ctx.guessed[i]) box.append(el("p", { class: "note", text: s("guess_note") }));
}

function renderTable(res, i, ctx, target, y, prod) {
  const table = q("stage-table");
  if (!table) return;
  const body = clear(table.tBodies[0]);
  const p = res.softmax[i];
  const grad = p.map((v, c) => (v === null ? null : v - y[c]));
  const cols = [res.logits[i], res.shifted[i], res.exp[i], p, res.log_probs[i], y, prod, grad];
  ctx.classes.forEach((name, c) => {
    const tr = el("tr", { class: c === target ? "is-target" : null }, [
      el("th", { scope: "row", text: c + " " + className(name) }),
    ]);
    cols.forEach((col, k) => {
      const v = col[c];
      tr.append(el("td", { text: fmt(v), class: (k >= 5 && k <= 6 && v === 0) ? "zero" : null }));
    });
    body.append(tr);
  });
  const foot = clear(table.tFoot);
  const gradSum = sum(grad);
  const sumRow = [null, null, res.sum_exp[i], sum(p), null, sum(y), sum(prod), Math.abs(gradSum) < 1e-12 ? 0 : gradSum];
  const tr = el("tr", null, [el("th", { scope: "row", text: "Σ" })]);
  sumRow.forEach((v) => tr.append(el("td", { text: v === null ? "" : fmt(v) })));
  foot.append(tr);
  const head = table.querySelector("th.c-onehot");
  if (head) head.textContent = !ctx.spread ? s("one_hot") : s("target_dist");
}

function renderCharts(res, i, ctx, target, y, prod, loss) {
  const labels = ctx.classes.map((n, c) => c + " " + className(n));
  const p = res.softmax[i];
  classBars(chart("s1"), labels, res.logits[i], "logits", target);
  classBars(chart("s2"), labels, res.shifted[i], "shifted", target);
  classBars(chart("s3"), labels, res.exp[i], "exp", target, { xaxis: { range: [0, 1.3] } });
  // Stage 4: the exponentials stacked end to end make up S.
  const exps = res.exp[i];
  const base = color("sum");
  const traces = exps.map((v, c) => ({
    type: "bar",
    orientation: "h",
    y: ["S"],
    x: [v],
    name: labels[c],
    marker: { color: c === target ? color("nll") : c % 2 ? base : base + "88", line: { color: "#fff", width: 1 } },
    hovertemplate: labels[c] + ": %{x:.6f}<extra></extra>",
    text: [String(c)],
    textposition: "inside",
    insidetextanchor: "middle",
    textfont: { family: MONO, size: 12, color: "#fff" },
  }));
  plot(chart("s4"), traces, {
    barmode: "stack",
    height: 150,
    margin: { l: 30, r: 16, t: 8, b: 36 },
    xaxis: { title: { text: "S = " + fmt(res.sum_exp[i]) } },
  });
  classBars(chart("s5"), labels, p, "softmax", target, { xaxis: { range: [0, 1.3] } });
  classBars(chart("s6"), labels, res.log_probs[i], "logp", target);
  classBars(chart("s7"), labels, y, "onehot", target, { xaxis: { range: [0, 1.3] } });
  classBars(chart("s8"), labels, prod, "product", target);
  // Stage 9: the curve -log p with this picture on it; with a spread target, every class with
  // target mass on the curve and the loss (their weighted sum) as a dashed line.
  const xs = [];
  for (let k = 1; k <= 200; k++) xs.push(k / 200);
  const py = p[target];
  const curve = { type: "scatter", mode: "lines", x: xs, y: xs.map((v) => -Math.log(v)), line: { color: color("nll"), width: 3 }, hoverinfo: "skip" };
  const top = Math.max(5.5, Math.min(loss + 1, 40));
  if (!ctx.spread && !ctx.weight) {
    plot(chart("s9"), [curve, {
      type: "scatter", mode: "markers+text", x: [py], y: [loss], text: ["ℓ = " + fmt(loss)],
      textposition: py > 0.6 ? "top left" : "top right", textfont: { family: MONO, size: 14 },
      marker: { size: 14, color: color("nll"), line: { color: "#fff", width: 2 } },
      hovertemplate: "p = %{x:.6f}<br>ℓ = %{y:.6f}<extra></extra>",
    }], {
      height: 260,
      xaxis: { title: { text: "p_y" }, range: [0, 1.02] },
      yaxis: { title: { text: "−log p_y" }, range: [0, top] },
    });
    return;
  }
  const massed = y.map((v, c) => c).filter((c) => y[c] > 0 && p[c] !== null);
  plot(chart("s9"), [curve, {
    type: "scatter", mode: "markers", x: massed.map((c) => p[c]), y: massed.map((c) => -Math.log(p[c])),
    customdata: massed.map((c) => labels[c]),
    marker: { size: massed.map((c) => 6 + 12 * Math.sqrt(y[c])), color: color("nll"), line: { color: "#fff", width: 2 } },
    hovertemplate: "%{customdata}<br>p = %{x:.6f}<br>−log p = %{y:.6f}<extra></extra>",
  }], {
    height: 260,
    shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: loss, y1: loss, line: { color: color("nll"), width: 2, dash: "dash" } }],
    annotations: [{
      xref: "paper", x: 1, y: loss, xanchor: "right", yanchor: "bottom", showarrow: false,
      bgcolor: "rgba(255,255,255,0.9)", text: "ℓ = " + fmt(loss), font: { family: MONO, size: 14, color: color("nll") },
    }],
    xaxis: { title: { text: "p" }, range: [0, 1.02] },
    yaxis: { title: { text: "−log p" }, range: [0, Math.max(top, Math.min(40, Math.max(...massed.map((c) => -Math.log(p[c]))) + 0.5))] },
  });
}

function renderBatch(res, i, ctx) {
  const per = res.per_element_loss;
  const n = per.length;
  const names = ctx.pictures ? ctx.pictures.map((p) => p.title) : per.map((_, k) => String(k + 1));
  const div = chart("s10") || chart("batch");
  const colors = per.map((_, k) => (k === i ? color("batch") : color("batch") + "77"));
  const shapes = [];
  if (typeof res.loss === "number") {
    shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: res.loss, y1: res.loss, line: { color: color("nll"), width: 3, dash: "dash" } });
  }
  plot(div, [{
    type: "bar",
    x: names,
    y: per,
    marker: { color: colors },
    text: per.map((v) => fmt(v)),
    textposition: "inside",
    insidetextanchor: "middle",
    textfont: { family: MONO, size: 13, color: "#fff" },
    hovertemplate: "%{x}: %{y:.6f}<extra></extra>",
  }], {
    height: 280,
    shapes: shapes,
    annotations: typeof res.loss === "number" ? [{
      xref: "paper", x: 0, y: res.loss, yanchor: "bottom", xanchor: "left", showarrow: false,
      bgcolor: "rgba(255,255,255,0.9)",
      text: (ctx.reduction === "sum" ? "Σ" : s("mean_line")) + " " + fmt(res.loss),
      font: { family: MONO, color: color("nll"), size: 13 },
    }] : [],
    xaxis: { tickfont: { family: FONT }, type: "category" },
    yaxis: { title: { text: "ℓ" }, rangemode: "tozero" },
    margin: { t: 24 },
  });
  const dl = keys("s10");
  if (dl) {
    const mean = typeof res.loss === "number" ? res.loss : null;
    fillDl(dl, [
      ["(" + per.map((v) => fmt(v)).join(" + ") + ") / " + n, fmt(mean), { "data-testid": "loss-value", class: "loss-value" }],
    ]);
  }
}

function renderChecks(res, i, ctx, target, prod, loss) {
  const dl = q("checks");
  if (!dl) return;
  clear(dl);
  const w = ctx.weight;
  const wy = w ? w[target] : 1;
  // The class-index shortcut holds for a one-hot target only: with a spread one every class
  // counts, so it is shown as not applying rather than as a failure.
  const rows = [
    [w ? s("full_sum_w") : s("full_sum"), fullSum(prod, w), loss],
    [w ? s("shortcut_w") : s("shortcut"), -wy * res.log_probs[i][target], ctx.spread ? undefined : loss],
  ];
  if (ctx.torchOne !== undefined && ctx.torchOne !== null) rows.push([s("torch_one"), ctx.torchOne, loss]);
  const per = res.per_element_loss;
  if (typeof res.loss === "number" && ctx.reduction === "mean" && !w) {
    rows.push([s("batch_mean"), sum(per) / per.length, res.torch_loss]);
    rows.push([s("torch_batch"), res.torch_loss, res.loss]);
  } else if (res.torch_loss !== undefined && !Array.isArray(res.torch_loss)) {
    rows.push([s("torch_batch"), res.torch_loss, res.loss]);
  }
  for (const [label, value, ref] of rows) {
    dl.append(el("dt", { text: label }));
    dl.append(el("dd", { text: fmt(value, 6) }));
    if (ref === undefined) {
      dl.append(el("dd", { class: "verdict na", text: "— " + s("not_apply") }));
      continue;
    }
    const same = agree(value, ref);
    const nan = same && Number.isNaN(value === null ? NaN : value);
    dl.append(el("dd", { class: "verdict " + (same ? "ok" : "bad"), text: same ? "✓ " + (nan ? s("agree_nan") : s("agree")) : "✗ " + s("differ") }));
  }
}

/** The picture's own F.cross_entropy (from a one-row /loss) arrived: redraw the checks only. */
export function updateChecks(res, i, ctx) {
  const target = ctx.targets[i];
  const y = res.target_dist ? res.target_dist[i] : res.one_hot[i];
  ctx.spread = isSpread(y);
  renderChecks(res, i, ctx, target, product(y, res.log_probs[i]), res.per_element_loss[i]);
}

function renderGrad(res, i, ctx, y) {
  const labels = ctx.classes.map((n, c) => c + " " + className(n));
  const p = res.softmax[i];
  // ∂ℓ/∂z_c of −Σ_k w_k y_k log p_k is (Σ_k w_k y_k) p_c − w_c y_c: p − y without weights.
  const w = ctx.weight;
  const wsum = w ? sum(y.map((v, c) => w[c] * v)) : 1;
  const pmy = p.map((v, c) => wsum * v - (w ? w[c] : 1) * y[c]);
  const scale = ctx.reduction === "mean" ? (res.denominator || res.per_element_loss.length) : 1;
  const auto = res.grad ? res.grad[i].map((v) => (v === null ? NaN : v * scale)) : [];
  plot(chart("grad"), [
    { type: "bar", name: s("grad"), x: labels, y: pmy, marker: { color: color("grad") }, hovertemplate: "%{x}: %{y:.6f}<extra>p − y</extra>" },
    { type: "bar", name: s("autograd").replace("N", String(scale)), x: labels, y: auto, marker: { color: color("grad") + "66", line: { color: color("grad"), width: 2 } }, hovertemplate: "%{x}: %{y:.6f}<extra>autograd</extra>" },
  ], {
    height: 320,
    showlegend: true,
    legend: { orientation: "h", y: 1.12, x: 0 },
    barmode: "group",
    xaxis: { tickangle: -40, tickfont: { family: FONT }, type: "category" },
    yaxis: { title: { text: "∂ℓ/∂z" }, zeroline: true },
    margin: { t: 36, b: 90 },
  });
}

function renderKeys(res, i, ctx, target, prod, loss) {
  const p = res.softmax[i];
  const z = res.logits[i];
  const predicted = res.predicted ? res.predicted[i] : z.indexOf(Math.max(...z));
  const set = (name, pairs) => { const dl = keys(name); if (dl) fillDl(dl, pairs); };
  set("s1", [[s("max"), fmt(res.max_logit[i])], [s("predicted"), className(ctx.classes[predicted])]]);
  set("s2", [["max", fmt(res.max_logit[i])]]);
  set("s3", [["exp(z_y − max)", fmt(res.exp[i][target])]]);
  set("s4", [["S", fmt(res.sum_exp[i])], ["log-sum-exp", fmt(res.log_sum_exp[i])]]);
  set("s5", [["p_y", fmt(p[target])], ["Σ p", fmt(sum(p))]]);
  set("s6", [["log p_y", fmt(res.log_probs[i][target])]]);
  set("s7", [[s("target"), target + " " + className(ctx.classes[target])]]);
  set("s8", [["Σ y · log p", fmt(sum(prod))]]);
  set("s9", [["ℓ", fmt(loss), { class: "loss-value" }]]);
}

export function renderStages(res, i, ctx) {
  const target = ctx.targets[i];
  const y = res.target_dist ? res.target_dist[i] : res.one_hot[i];
  const prod = product(y, res.log_probs[i]);
  const loss = res.per_element_loss[i];
  ctx.spread = isSpread(y);
  showTexts(ctx.spread);
  renderPicker(ctx, i);
  renderFocus(res, i, ctx, target, loss);
  renderTable(res, i, ctx, target, y, prod);
  renderKeys(res, i, ctx, target, prod, loss);
  renderCharts(res, i, ctx, target, y, prod, loss);
  renderBatch(res, i, ctx);
  renderChecks(res, i, ctx, target, prod, loss);
  renderGrad(res, i, ctx, y);
  const focus = q("focus");
  if (focus) focus.dataset.picture = String(i); // which picture every view now shows
}

