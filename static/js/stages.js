/* The stage-by-stage panel shared by the explainer and the upload page.
 * renderStages(res, i, ctx) fills it from a /loss or /predict answer for picture i.
 * ctx: { classes, targets, pictures: [{src, preview, title}], torchOne: number|null,
 *        onPick(i), reduction, weight: [w_c]|undefined, guessed: [bool] (target = prediction),
 *        label(c): how the page names class c (optional) }
 * The texts follow the target: one-hot (a class index) or spread (label smoothing, a probability
 * target), shown by the elements' data-when="onehot" / "spread". */
import { s, fmt, el, sketch, clear, fillDl, dlItems, patchChildren, setText, color, className, sum, product, agree, subscripted } from "./common.js";
import { stageBars, columns, curve, stack } from "./charts.js";

/** True when picture i's target row is not one-hot: every class then counts in the loss. */
function isSpread(y) {
  return y.filter((v) => v !== 0).length > 1 || y.some((v) => v !== 0 && v !== 1);
}

function showTexts(spread) {
  for (const node of document.querySelectorAll("[data-when]")) {
    if (!node.closest(".panel") || !node.closest(".stage-grid, .s-checks, .s-grad")) continue;
    const hidden = (node.dataset.when === "spread") !== spread;
    if (node.hidden !== hidden) node.hidden = hidden;
  }
}

/** −Σ w_c y_c log p_c: the loss of one picture from its target row (w = 1 without weights). */
function fullSum(prod, w) {
  return -sum(prod.map((v, c) => (w ? w[c] * v : v)));
}

/** "3 cat": a class as the charts and the table name it (ctx.label, where the page has its own). */
function classLabel(ctx, c) {
  return ctx.label ? ctx.label(c) : c + " " + className(ctx.classes[c]);
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
  const nodes = [];
  const pic = ctx.pictures && ctx.pictures[i];
  if (pic) {
    // a CIFAR-10 picture is 32×32 already: one picture, said so, rather than the same one twice
    const native = pic.size && pic.size[0] === 32 && pic.size[1] === 32;
    if (pic.src && !native) {
      nodes.push(sketch("figure", null, [
        sketch("img", { src: pic.src, alt: s("picture_n", { i: i + 1 }), class: "pixelated" }),
        sketch("figcaption", { text: s("original") }),
      ]));
    }
    if (pic.preview) {
      nodes.push(sketch("figure", null, [
        sketch("img", { src: pic.preview, alt: "32×32", class: "pixelated" }),
        sketch("figcaption", { text: native ? s("original_is_32") : "32×32" }),
      ]));
    }
  }
  const pred = res.predicted ? res.predicted[i] : null;
  nodes.push(sketch("dl", { class: "facts" }, dlItems([
    [s("target"), ctx.classes[target] !== undefined ? className(ctx.classes[target]) : "—"],
    [s("predicted"), pred !== null ? className(ctx.classes[pred]) : "—"],
    [s("loss"), fmt(loss), { class: "mono" }],
  ])));
  if (ctx.guessed && ctx.guessed[i]) nodes.push(sketch("p", { class: "note", text: s("guess_note") }));
  patchChildren(box, nodes); // only what changed: the box is a live region, and its images stay
}

function renderTable(res, i, ctx, target, y, prod) {
  const table = q("stage-table");
  if (!table) return;
  const p = res.softmax[i];
  const grad = p.map((v, c) => (v === null ? null : v - y[c]));
  const cols = [res.logits[i], res.shifted[i], res.exp[i], p, res.log_probs[i], y, prod, grad];
  const rows = ctx.classes.map((name, c) => sketch("tr", { class: c === target ? "is-target" : null }, [
    sketch("th", { scope: "row", text: classLabel(ctx, c) }),
    ...cols.map((col, k) => sketch("td", { text: fmt(col[c]), class: (k >= 5 && k <= 6 && col[c] === 0) ? "zero" : null })),
    ctx.weight ? sketch("td", { text: fmt(ctx.weight[c]) }) : null,
  ]));
  patchChildren(table.tBodies[0], rows); // each cell rewritten only where its text changed
  // the class weights, when there are any: the column that explains a weighted loss
  const headRow = table.tHead.rows[0];
  let weightHead = headRow.querySelector("th.c-weight");
  if (ctx.weight && !weightHead) {
    weightHead = el("th", { scope: "col", class: "c-weight", text: s("weight_col") });
    headRow.append(weightHead);
  } else if (!ctx.weight && weightHead) {
    weightHead.remove();
  }
  const gradSum = sum(grad);
  const sumRow = [null, null, res.sum_exp[i], sum(p), null, sum(y), sum(prod), Math.abs(gradSum) < 1e-12 ? 0 : gradSum];
  patchChildren(table.tFoot, [sketch("tr", null, [
    sketch("th", { scope: "row", text: "Σ" }),
    ...sumRow.map((v) => sketch("td", { text: v === null ? "" : fmt(v) })),
    ctx.weight ? sketch("td") : null,
  ])]);
  const head = table.querySelector("th.c-onehot");
  if (head) setText(head, !ctx.spread ? s("one_hot") : s("target_dist"));
}

function renderCharts(res, i, ctx, target, y, prod, loss) {
  const labels = ctx.classes.map((n, c) => classLabel(ctx, c));
  const p = res.softmax[i];
  stageBars(chart("s1"), labels, res.logits[i], "logits", target);
  stageBars(chart("s2"), labels, res.shifted[i], "shifted", target);
  stageBars(chart("s3"), labels, res.exp[i], "exp", target);
  // Stage 4: the exponentials stacked end to end make up S.
  stack(chart("s4"), {
    values: res.exp[i], labels, target, color: color("sum"), targetColor: color("nll"),
    title: s("chart_stack"), total: "S = " + fmt(res.sum_exp[i]), legend: s("target_segment"), fmt,
  });
  stageBars(chart("s5"), labels, p, "softmax", target);
  stageBars(chart("s6"), labels, res.log_probs[i], "logp", target);
  stageBars(chart("s7"), labels, y, "onehot", target);
  stageBars(chart("s8"), labels, prod, "product", target);
  // Stage 9: the curve -log p with this picture on it; with a spread target, every class with
  // target mass on the curve and the loss (their weighted sum) as a dashed line.
  const top = Math.max(5.5, Math.min(loss + 1, 40));
  const nll = {
    f: (v) => -Math.log(v), x: [0, 1], color: color("nll"), title: s("chart_curve"),
    fmt: (v, d) => fmt(v, d === undefined ? 4 : d),
  };
  if (!ctx.spread && !ctx.weight) {
    curve(chart("s9"), {
      ...nll, y: [0, top], points: [{ x: p[target], y: loss, label: "ℓ = " + fmt(loss) }],
      xTitle: "p_y", yTitle: "−log p_y",
    });
    return;
  }
  const massed = y.map((v, c) => c).filter((c) => y[c] > 0 && p[c] !== null);
  const high = Math.max(top, Math.min(40, Math.max(...massed.map((c) => -Math.log(p[c]))) + 0.5));
  curve(chart("s9"), {
    ...nll, y: [0, high], xTitle: "p", yTitle: "−log p", line: { y: loss, label: "ℓ = " + fmt(loss) },
    points: massed.map((c) => ({ x: p[c], y: -Math.log(p[c]), r: 3 + 6 * Math.sqrt(y[c]), name: labels[c] })),
  });
}

function renderBatch(res, i, ctx) {
  const per = res.per_element_loss;
  const n = per.length;
  const names = ctx.pictures ? ctx.pictures.map((p) => p.title) : per.map((_, k) => String(k + 1));
  const div = chart("s10") || chart("batch");
  const base = color("batch");
  columns(div, {
    labels: names, title: s("chart_batch"), fmt: (v, d) => fmt(v, d === undefined ? 4 : d), yTitle: "ℓ",
    series: [{ name: "ℓ", values: per, color: base }], target: i,
    line: typeof res.loss === "number"
      ? { y: res.loss, color: color("nll"), label: (ctx.reduction === "sum" ? "Σ" : s("mean_line")) + " " + fmt(res.loss) }
      : null,
  });
  const dl = keys("s10");
  if (dl) {
    // what the reduction did, as an equation: 'mean' divides by the rows counted (the targets'
    // weights with class weights), 'sum' only adds, 'none' keeps the row losses
    const terms = per.map((v) => fmt(v)).join(" + ");
    const den = res.denominator || n;
    const key = ctx.reduction === "none" ? "ℓ =" : ctx.reduction === "sum" ? terms + " ="
      : "(" + terms + ") / " + fmt(den, Number.isInteger(den) ? 0 : 4) + " =";
    const value = Array.isArray(res.loss) ? "[" + res.loss.map((v) => fmt(v)).join(", ") + "]" : fmt(res.loss);
    fillDl(dl, [[key, value, { "data-testid": "loss-value", class: "loss-value" }]]);
  }
}

function renderChecks(res, i, ctx, target, prod, loss) {
  const dl = q("checks");
  if (!dl) return;
  const w = ctx.weight;
  const named = target >= 0 && target < ctx.classes.length;
  const wy = w && named ? w[target] : 1;
  // The class-index shortcut holds for a one-hot target only: with a spread one every class
  // counts, so it is shown as not applying rather than as a failure. An ignored row
  // (ignore_index) has no target class to take it to.
  const rows = [[w ? s("full_sum_w") : s("full_sum"), fullSum(prod, w), loss]];
  if (named) {
    rows.push([w ? s("shortcut_w") : s("shortcut"), -wy * res.log_probs[i][target], ctx.spread ? undefined : loss]);
  }
  if (ctx.torchOne !== undefined && ctx.torchOne !== null) rows.push([s("torch_one"), ctx.torchOne, loss]);
  const per = res.per_element_loss;
  // (no torch_loss: PyTorch has not answered yet, and its rows wait)
  if (typeof res.loss === "number" && ctx.reduction === "mean" && !w && res.torch_loss !== undefined) {
    // the mean over the rows that count: ignored rows add 0 and are not counted
    rows.push([s("batch_mean"), sum(per) / (res.denominator || per.length), res.torch_loss]);
    rows.push([s("torch_batch"), res.torch_loss, res.loss]);
  } else if (res.torch_loss !== undefined && !Array.isArray(res.torch_loss)) {
    rows.push([s("torch_batch"), res.torch_loss, res.loss]);
  }
  const nodes = [];
  for (const [label, value, ref] of rows) {
    nodes.push(sketch("dt", null, subscripted(label)));
    nodes.push(sketch("dd", { text: fmt(value, 6) }));
    if (ref === undefined) {
      nodes.push(sketch("dd", { class: "verdict na", text: "— " + s("not_apply") }));
      continue;
    }
    const same = agree(value, ref);
    const nan = same && Number.isNaN(value === null ? NaN : value);
    nodes.push(sketch("dd", { class: "verdict " + (same ? "ok" : "bad"), text: same ? "✓ " + (nan ? s("agree_nan") : s("agree")) : "✗ " + s("differ") }));
  }
  patchChildren(dl, nodes);
}

/** The picture's own F.cross_entropy (from a one-row /loss) arrived: redraw the checks only. */
export function updateChecks(res, i, ctx) {
  const target = ctx.targets[i];
  const y = res.target_dist ? res.target_dist[i] : res.one_hot[i];
  ctx.spread = isSpread(y);
  renderChecks(res, i, ctx, target, product(y, res.log_probs[i]), res.per_element_loss[i]);
}

function renderGrad(res, i, ctx, y) {
  const labels = ctx.classes.map((n, c) => classLabel(ctx, c));
  const p = res.softmax[i];
  // ∂ℓ/∂z_c of −Σ_k w_k y_k log p_k is (Σ_k w_k y_k) p_c − w_c y_c: p − y without weights.
  const w = ctx.weight;
  const wsum = w ? sum(y.map((v, c) => w[c] * v)) : 1;
  const pmy = p.map((v, c) => wsum * v - (w ? w[c] : 1) * y[c]);
  const scale = ctx.reduction === "mean" ? (res.denominator || res.per_element_loss.length) : 1;
  const auto = res.grad ? res.grad[i].map((v) => (v === null ? NaN : v * scale)) : [];
  columns(chart("grad"), {
    labels, title: s("chart_grad"), fmt: (v, d) => fmt(v, d === undefined ? 4 : d), yTitle: "∂ℓ/∂z", legend: true, tall: 320,
    series: [
      { name: s("grad"), values: pmy, color: color("grad") },
      { name: s("autograd").replace("N", String(scale)), values: auto, color: color("grad"), opacity: 0.4 },
    ],
  });
}

function renderKeys(res, i, ctx, target, prod, loss) {
  const p = res.softmax[i];
  const z = res.logits[i];
  const predicted = res.predicted ? res.predicted[i] : z.indexOf(Math.max(...z));
  const set = (name, pairs) => { const dl = keys(name); if (dl) fillDl(dl, pairs); };
  set("s1", [[s("max"), fmt(res.max_logit[i])], [s("predicted"), className(ctx.classes[predicted])]]);
  set("s2", [[s("max"), fmt(res.max_logit[i])]]);
  set("s3", [["exp(z_y − max)", fmt(res.exp[i][target])]]);
  set("s4", [["S", fmt(res.sum_exp[i])], ["log-sum-exp", fmt(res.log_sum_exp[i])]]);
  set("s5", [["p_y", fmt(p[target])], ["Σ p", fmt(sum(p))]]);
  set("s6", [["log p_y", fmt(res.log_probs[i][target])]]);
  const named = target >= 0 && target < ctx.classes.length;
  set("s7", [[s("target"), named ? classLabel(ctx, target) : s("target_ignored", { i: target })]]);
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

