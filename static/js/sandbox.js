/* The sandbox: the explainer's instrument (instrument.js) without the picture: 2 to 20 classes,
 * a batch of rows you make up, probability targets, temperature applied to the logits.
 * Links of the old sandbox (one row, T for temperature) still open: z / T becomes the logits. */
import { s } from "./common.js";
import { createInstrument, parseNumber } from "./instrument.js";

const MIN_C = 2;
const MAX_C = 20;
const DEFAULT_ROWS = [
  { z: [2, 1, 0.1, -1.2, 0.5], t: 0 },
  { z: [0.5, 2.5, -0.3, 0.2, 1], t: 1 },
  { z: [-1, 0.3, 1.8, 0.4, -0.6], t: 4 },
];

function defaults() {
  return {
    rows: DEFAULT_ROWS.map((r) => ({ z: r.z.slice(), t: r.t, src: null })),
    i: 0, eps: 0, weight: null, reduction: "mean", form: "index", soft: null, eta: 1,
  };
}

const names = (C) => Array.from({ length: C }, (_, c) => s("class_n", { i: c }));

const instrument = createInstrument({
  page: "sandbox",
  names,
  stageClasses: names,
  label: (c) => s("class_n", { i: c }),
  short: (c) => String(c),
  classesOk: (C) => C >= MIN_C && C <= MAX_C,
  defaultWeight: (C) => Array.from({ length: C }, (_, c) => (c === 0 ? 2 : 1)),
  defaults,
  picture: () => null,
  resetRow: (row, i) => {
    if (row.base) return row.base;
    const d = DEFAULT_ROWS[i];
    const C = row.z.length;
    return d ? Array.from({ length: C }, (_, c) => (c < d.z.length ? d.z[c] : 0)) : new Array(C).fill(0);
  },
});

// ---- the number of classes: every row, weight and probability target grows or shrinks ---------

const count = document.getElementById("num-classes");
const countError = document.getElementById("num-classes-error");

function fit(row, C, fill) {
  const out = row.slice(0, C);
  while (out.length < C) out.push(fill);
  return out;
}

count.addEventListener("change", () => {
  const { value, why } = parseNumber(count.value, count);
  const bad = why || (!Number.isInteger(value) || value < MIN_C || value > MAX_C
    ? s("err_classes", { lo: MIN_C, hi: MAX_C }) : null);
  countError.textContent = bad || "";
  if (bad) {
    count.setAttribute("aria-invalid", "true");
    return;
  }
  count.removeAttribute("aria-invalid");
  const st = instrument.state;
  st.rows.forEach((r) => {
    r.z = fit(r.z, value, 0);
    if (r.t >= value) r.t = value - 1;
    if (r.base) r.base = fit(r.base, value, 0);
  });
  if (st.weight) st.weight = fit(st.weight, value, 1);
  if (st.soft) st.soft = st.soft.map((row) => fit(row, value, 0));
  instrument.touched();
  instrument.rebuild();
});

document.getElementById("random").addEventListener("click", () => {
  const st = instrument.state;
  st.rows[st.i].z = st.rows[st.i].z.map(() => {
    const u = 1 - Math.random();
    const v = Math.random();
    return Math.round(Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v) * 20) / 10;
  });
  instrument.touched();
  instrument.refresh();
});

// ---- temperature: divide every logit by T ----------------------------------------------------

const tInput = document.getElementById("temperature");
const tError = document.getElementById("temperature-error");
document.getElementById("apply-temperature").addEventListener("click", () => {
  const { value, why } = parseNumber(tInput.value, tInput);
  const bad = why || (value <= 0 ? s("err_positive") : null);
  tError.textContent = bad || "";
  if (bad) {
    tInput.setAttribute("aria-invalid", "true");
    return;
  }
  tInput.removeAttribute("aria-invalid");
  const st = instrument.state;
  const scaled = st.rows.map((r) => r.z.map((v) => v / value));
  if (!scaled.every((row) => row.every(Number.isFinite))) {
    tError.textContent = s("err_temperature_overflow");
    return;
  }
  st.rows.forEach((r, k) => { r.z = scaled[k]; });
  instrument.touched();
  instrument.refresh();
});

instrument.start();
count.value = String(instrument.state.rows[0].z.length);
