/* The explainer: four CIFAR-10 test pictures through the Net on the server (/predict), whose
 * logits start the instrument (instrument.js); the mistakes computed live on the row being
 * edited; the stability box in float64 and float32. */
import { s, fmt, el, patchChildren, postForm, postJSON, className, CLASSES, subscripted } from "./common.js";
import { createInstrument, parseNumber } from "./instrument.js";
import { crossEntropy, stability } from "./engine.js";
import { lazy } from "./charts.js";

const box = document.getElementById("example");
const status = box.querySelector('[data-role="status"]');
const batchUrls = JSON.parse(box.dataset.batch);
const batchLabels = JSON.parse(box.dataset.labels);
const pictures = batchUrls.map((u, k) => ({ url: u, name: u.split("?")[0].split("/").pop(), label: CLASSES.indexOf(batchLabels[k]) }));
const WEIGHT = [1, 1, 1, 3, 1, 1, 1, 1, 2, 1];
const net = new Map(); // picture index -> {z: the Net's logits, preview}

const same = (a, b) => a.length === b.length && a.every((v, k) => v === b[k]);
const label = (c) => c + " " + className(CLASSES[c]);

function pictureRows(indices) {
  return indices.map((k) => ({ z: net.get(k).z.slice(), t: pictures[k].label, src: k }));
}

const instrument = createInstrument({
  page: "index",
  names: () => CLASSES.map((n) => className(n)),
  stageClasses: () => CLASSES,
  label,
  short: (c) => String(c),
  classesOk: (c) => c === CLASSES.length,
  defaultWeight: () => WEIGHT.slice(),
  defaults(q, notes) {
    let indices = pictures.map((_, k) => k);
    if (q.has("img")) {
      const parts = q.get("img").split(",");
      const custom = parts.map((p) => (p === "-" ? null : Number(p)));
      const ok = custom.length >= 1 && custom.length <= 8 &&
        custom.every((k) => k === null || (Number.isInteger(k) && k >= 0 && k < pictures.length));
      if (ok && (q.has("z") || custom.every((k) => k !== null))) {
        return { rows: custom.map((k) => (k === null ? { z: new Array(10).fill(0), t: 0, src: null } : pictureRows([k])[0])), i: 0, eps: 0, weight: null, reduction: "mean", form: "index", soft: null, eta: 1 };
      }
      notes.push(s("url_bad", { name: "img" }));
    }
    return { rows: pictureRows(indices), i: 0, eps: 0, weight: null, reduction: "mean", form: "index", soft: null, eta: 1 };
  },
  writeExtra(q, st) {
    const img = st.rows.map((r) => (r.src === null ? "-" : String(r.src))).join(",");
    if (img === pictures.map((_, k) => String(k)).join(",")) q.delete("img");
    else q.set("img", img);
  },
  picture: (row) => (row.src === null ? null : { src: pictures[row.src].url, preview: net.get(row.src).preview, size: net.get(row.src).size }),
  resetRow: (row) => (row.src === null ? row.base || row.z : net.get(row.src).z),
  isEdited: (st) => !st.rows.every((r) => r.src !== null && same(r.z, net.get(r.src).z)),
  onRender(res, st) {
    lazy(document.getElementById("mistakes"), () => mistakes(res, st));
  },
});

// ---- the mistakes, live on the row being edited ---------------------------------------------

function live(name, pairs) {
  const dl = document.querySelector('[data-live="' + name + '"]');
  if (!dl) return;
  patchChildren(dl, pairs.flatMap(([key, value, wide]) => [
    el("dt", null, subscripted(key)),
    el("dd", { text: value, class: wide ? "wide" : null }),
  ]));
}

function vec(xs, digits) {
  return "[" + xs.map((v) => fmt(v, digits === undefined ? 2 : digits)).join(", ") + "]";
}

function mistakes(res, st) {
  const i = st.i;
  const z = st.rows[i].z;
  const t = st.rows[i].t;
  if (!(t >= 0 && t < CLASSES.length)) {
    for (const name of ["m2", "m3", "m5"]) live(name, [[s("no_class_target"), ""]]);
  } else {
    const one = (logits, options) => crossEntropy([logits], [t], options);
    const correct = one(z).loss;
    const perfect = one(z.map((_, c) => (c === t ? 100 : 0)));
    live("m2", [
      [s("this_picture") + " · " + s("correct"), fmt(correct)],
      [s("this_picture") + " · " + s("double"), fmt(one(res.softmax[i]).loss)],
      [s("perfect") + " · " + s("correct"), fmt(perfect.loss)],
      [s("perfect") + " · " + s("double"), fmt(one(perfect.softmax[0]).loss)],
    ]);
    live("m3", [
      [s("nll_right"), fmt(-res.log_probs[i][t])],
      [s("nll_wrong"), fmt(-z[t])],
    ]);
    const smooth = one(z, { labelSmoothing: 0.1 });
    live("m5", [
      [s("smoothed_target"), vec(smooth.target_dist[0], 3), true],
      [s("with_smoothing"), fmt(smooth.loss)],
      [s("without_smoothing"), fmt(correct)],
    ]);
  }
  const rows = st.rows.filter((r) => r.t >= 0 && r.t < CLASSES.length);
  if (!rows.length) {
    live("m4", [[s("no_class_target"), ""]]);
    return;
  }
  const logits = rows.map((r) => r.z);
  const byIndex = crossEntropy(logits, rows.map((r) => r.t), { weight: WEIGHT });
  const byOneHot = crossEntropy(logits, byIndex.one_hot, { weight: WEIGHT });
  live("m4", [
    [s("weights_used") + " = " + vec(WEIGHT, 0), "", true],
    [s("index_targets") + " · " + s("loss_lc"), fmt(byIndex.loss)],
    [s("index_targets") + " · " + s("denominator") + " Σ w_y", fmt(byIndex.denominator, 1)],
    [s("onehot_targets") + " · " + s("loss_lc"), fmt(byOneHot.loss)],
    [s("onehot_targets") + " · " + s("denominator") + " N", fmt(byOneHot.denominator, 1)],
  ]);
}

// ---- start: the Net's logits of the four pictures -------------------------------------------

function showError(e) {
  status.hidden = false;
  status.classList.add("error");
  status.textContent = e && e.message ? e.message : String(e);
}

async function start() {
  const blobs = await Promise.all(batchUrls.map(async (u) => (await fetch(u)).blob()));
  const form = new FormData();
  blobs.forEach((b, k) => {
    form.append("image", b, pictures[k].name);
    form.append("label", batchLabels[k]);
  });
  const res = await postForm("/predict", form);
  // float32 outputs, shown to 6 decimals (about the digits float32 carries): typeable numbers
  res.logits.forEach((z, k) => net.set(k, { z: z.map((v) => Number(v.toFixed(6))), preview: res.images[k].preview, size: res.images[k].original_size }));
  status.hidden = true;
  instrument.start();
}

// ---- numerical stability: naive softmax and log-sum-exp, in float64 and float32 -------------

const bigInput = document.getElementById("stab-big");
const bigSlider = document.getElementById("stab-slider");
const targetSelect = document.getElementById("stab-target");
const stabError = document.getElementById("stab-error");
let big = Number(bigInput.value);
let stabTimer = 0;
let stabAbort = null;

function num(v, f32) {
  return Number.isFinite(v) ? String(Number(v.toPrecision(f32 ? 7 : 12))) : String(v);
}

function drawStability() {
  const t = Number(targetSelect.value);
  const z = [big, 0];
  for (const f32 of [false, true]) {
    const r = stability(z, t, f32);
    const bits = f32 ? "32" : "64";
    const list = (xs) => "[" + xs.map((v) => num(v, f32)).join(", ") + "]";
    const naive = document.querySelector('[data-role="naive' + bits + '"]');
    naive.textContent = s("stab_naive", { exp: list(r.exp), soft: list(r.naiveSoftmax), loss: num(r.naiveLoss, f32) });
    naive.closest(".stab-box").classList.toggle("stab-bad", !Number.isFinite(r.naiveLoss));
    naive.closest(".stab-box").classList.toggle("stab-good", Number.isFinite(r.naiveLoss));
    const lse = document.querySelector('[data-role="lse' + bits + '"]');
    lse.textContent = s("stab_lse", { lse: num(r.lse, f32), soft: list(r.softmax), loss: num(r.loss, f32) });
    lse.closest(".stab-box").classList.toggle("stab-good", Number.isFinite(r.loss));
    lse.closest(".stab-box").classList.toggle("stab-bad", !Number.isFinite(r.loss));
  }
  clearTimeout(stabTimer);
  stabTimer = setTimeout(() => askTorch(z, t), 120);
}

async function askTorch(z, t) {
  const out = document.querySelector('[data-role="stab-torch"]');
  if (stabAbort) stabAbort.abort();
  stabAbort = new AbortController();
  try {
    const [f64, f32] = await Promise.all([
      postJSON("/loss", { logits: [z], target: [t], fields: ["loss"] }, stabAbort.signal),
      postJSON("/try", { call: "float32", logits: [z], target: [t] }, stabAbort.signal),
    ]);
    const v32 = f32.ok ? num(f32.value, true) : f32.error.type + ": " + f32.error.message;
    out.textContent = s("stab_torch", { f64: num(f64.loss, false), f32: v32 });
  } catch (e) {
    if (e.name !== "AbortError") out.textContent = e.message;
  }
}

bigInput.addEventListener("input", () => {
  const { value, why } = parseNumber(bigInput.value, bigInput);
  stabError.textContent = why || "";
  if (why) {
    bigInput.setAttribute("aria-invalid", "true");
    return;
  }
  bigInput.removeAttribute("aria-invalid");
  big = value;
  bigSlider.value = String(value);
  drawStability();
});
bigSlider.addEventListener("input", () => {
  big = Number(bigSlider.value);
  bigInput.value = String(big);
  bigInput.removeAttribute("aria-invalid");
  stabError.textContent = "";
  drawStability();
});
targetSelect.addEventListener("change", drawStability);

drawStability();
start().catch(showError);
