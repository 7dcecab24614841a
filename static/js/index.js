/* The explainer: four bundled CIFAR-10 test pictures through /predict, then every stage. */
import { s, fmt, el, clear, fillDl, postJSON, postForm, className } from "./common.js";
import { renderStages } from "./stages.js";
const box = document.getElementById("example");
const status = box.querySelector('[data-role="status"]');
const batchUrls = JSON.parse(box.dataset.batch);
const batchLabels = JSON.parse(box.dataset.labels);
const WEIGHT = [1, 1, 1, 3, 1, 1, 1, 1, 2, 1];
let res = null;
let ctx = null;
let shown = -1;

function live(name, pairs) {
  const dl = document.querySelector('[data-live="' + name + '"]');
  if (!dl) return;
  clear(dl);
  for (const [label, value, wide] of pairs) {
    dl.append(el("dt", { text: label }));
    dl.append(el("dd", { text: value, class: wide ? "wide" : null }));
  }
}

function vec(xs, digits) {
  return "[" + xs.map((v) => fmt(v, digits === undefined ? 2 : digits)).join(", ") + "]";
}

async function mistakes(i) {
  const t = ctx.targets[i];
  const row = res.logits[i];
  const perfect = row.map((_, c) => (c === t ? 100 : 0));
  const [double, perfectRes, smooth] = await Promise.all([
    postJSON("/loss", { logits: [res.softmax[i]], target: [t] }),
    postJSON("/loss", { logits: [perfect], target: [t] }),
    postJSON("/loss", { logits: [row], target: [t], label_smoothing: 0.1 }),
  ]);
  const perfectDouble = await postJSON("/loss", { logits: [perfectRes.softmax[0]], target: [t] });
  if (shown !== i) return;
  live("m2", [
    [s("this_picture") + " · " + s("correct"), fmt(res.per_element_loss[i])],
    [s("this_picture") + " · " + s("double"), fmt(double.loss)],
    [s("perfect") + " · " + s("correct"), fmt(perfectRes.loss)],
    [s("perfect") + " · " + s("double"), fmt(perfectDouble.loss)],
  ]);
  live("m3", [
    [s("nll_right"), fmt(-res.log_probs[i][t])],
    [s("nll_wrong"), fmt(-row[t])],
  ]);
  const dist = smooth.target_dist[0];
  live("m5", [
    [s("smoothed_target"), vec(dist, 3), true],
    [s("with_smoothing"), fmt(smooth.loss)],
    [s("without_smoothing"), fmt(res.per_element_loss[i])],
  ]);
}

async function weighted() {
  const byIndex = await postJSON("/loss", { logits: res.logits, target: ctx.targets, weight: WEIGHT });
  const byOneHot = await postJSON("/loss", { logits: res.logits, target: byIndex.one_hot, weight: WEIGHT });
  live("m4", [
    [s("weights_used") + " = " + vec(WEIGHT, 0), "", true],
    [s("index_targets") + " · " + s("loss_lc"), fmt(byIndex.loss)],
    [s("index_targets") + " · " + s("denominator") + " Σ w_y", fmt(byIndex.denominator, 1)],
    [s("onehot_targets") + " · " + s("loss_lc"), fmt(byOneHot.loss)],
    [s("onehot_targets") + " · " + s("denominator") + " N", fmt(byOneHot.denominator, 1)],
  ]);
}

async function show(i) {
  shown = i;
  let torchOne = null;
  try {
    torchOne = (await postJSON("/loss", { logits: [res.logits[i]], target: [ctx.targets[i]] })).torch_loss;
  } catch (e) {
    torchOne = null;
  }
  if (shown !== i) return;
  ctx.torchOne = torchOne;
  renderStages(res, i, ctx);
  mistakes(i).catch(showError);
}

function showError(e) {
  status.hidden = false;
  status.classList.add("error");
  status.textContent = e && e.message ? e.message : String(e);
}

async function start() {
  const blobs = await Promise.all(batchUrls.map(async (u) => {
    const r = await fetch(u);
    return r.blob();
  }));
  const form = new FormData();
  blobs.forEach((b, k) => {
    const name = batchUrls[k].split("?")[0].split("/").pop();
    form.append("image", b, name);
    form.append("label", batchLabels[k]);
  });
  res = await postForm("/predict", form);
  const targets = res.images.map((im, k) => (im.label !== null && im.label !== undefined ? im.label : res.predicted[k]));
  ctx = {
    classes: res.classes,
    targets: targets,
    reduction: "mean",
    pickerKey: "example",
    pictures: res.images.map((im, k) => ({
      src: batchUrls[k],
      preview: im.preview,
      title: (k + 1) + " · " + className(res.classes[targets[k]]),
    })),
    onPick: (k) => show(k).catch(showError),
  };
  status.hidden = true;
  await show(0);
  weighted().catch(showError);
}

// Numerical stability: the naive softmax here in the browser, log-sum-exp on the server.
const bigInput = document.getElementById("stab-big");
const targetSelect = document.getElementById("stab-target");
const naiveOut = document.querySelector('[data-role="naive"]');
const lseOut = document.querySelector('[data-role="lse"]');
let stabTimer = 0;
let stabAbort = null;

async function stability() {
  const big = Number(bigInput.value);
  const t = Number(targetSelect.value);
  const logits = [Number.isFinite(big) ? big : 0, 0];
  const e = logits.map((z) => Math.exp(z));
  const total = e[0] + e[1];
  const soft = e.map((v) => v / total);
  const naiveLoss = -Math.log(soft[t]);
  naiveOut.textContent = "e^z = [" + e.map((v) => String(v)).join(", ") + "]\nsoftmax = [" +
    soft.map((v) => String(v)).join(", ") + "]\nloss = " + String(naiveLoss);
  if (stabAbort) stabAbort.abort();
  stabAbort = new AbortController();
  try {
    const r = await postJSON("/loss", { logits: [logits], target: [t] }, stabAbort.signal);
    lseOut.textContent = "log-sum-exp = " + fmt(r.log_sum_exp[0]) + "\nsoftmax = [" +
      r.softmax[0].map((v) => fmt(v)).join(", ") + "]\nloss = " + fmt(r.loss);
  } catch (err) {
    if (err.name !== "AbortError") lseOut.textContent = err.message;
  }
}
function scheduleStability() {
  clearTimeout(stabTimer);
  stabTimer = setTimeout(stability, 60);
}
bigInput.addEventListener("input", scheduleStability);
targetSelect.addEventListener("change", scheduleStability);

stability();
start().catch(showError);
