/* The sandbox: editable logits -> /loss on every edit (stale requests aborted) -> every stage.
 * State lives in the query string: z, t, T, ls, red, w (weights), p (probability target). */
import {
  s, fmt, pyNum, el, clear, fillDl, postJSON, plot, color, MONO, syncLangLinks, sum, product, agree,
} from "./common.js";
const DEFAULT = { z: [2, 1, 0.1, -1.2, 0.5], t: 0, T: 1, ls: 0, red: "mean", w: null, p: null };
const MIN_C = 2;
const MAX_C = 20;

const rowsBox = document.getElementById("logit-rows");
const countInput = document.getElementById("num-classes");
const targetSelect = document.getElementById("target");
const tInput = document.getElementById("temperature");
const tSlider = document.getElementById("temperature-slider");
const lsInput = document.getElementById("smoothing");
const lsSlider = document.getElementById("smoothing-slider");
const redSelect = document.getElementById("reduction");
const useWeight = document.getElementById("use-weight");
const useProb = document.getElementById("use-prob");
const lossOut = document.getElementById("loss-value");
const lossCheck = document.getElementById("loss-check");
const warningsEl = document.getElementById("warnings");
const latencyEl = document.getElementById("latency");
const table = document.getElementById("sb-table");
const keysEl = document.getElementById("sb-keys");
const codeEl = document.getElementById("code");
const copyStatus = document.getElementById("copy-status");

let state = readState();
let timer = 0;
let abort = null;
let editedAt = 0;
let rendered = false; // the first answer also waits for the page to load: not an edit

function num(text, fallback) {
  const v = Number(text);
  return text !== null && text !== "" && Number.isFinite(v) ? v : fallback;
}
function list(text) {
  if (!text) return null;
  const parts = text.split(",").map((x) => Number(x));
  return parts.every((v) => Number.isFinite(v)) ? parts : null;
}
function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, v));
}

function readState() {
  const q = new URL(window.location.href).searchParams;
  const z = list(q.get("z")) || DEFAULT.z.slice();
  const zz = z.slice(0, MAX_C);
  while (zz.length < MIN_C) zz.push(0);
  const C = zz.length;
  const fit = (arr, fill) => {
    if (!arr) return null;
    const out = arr.slice(0, C);
    while (out.length < C) out.push(fill);
    return out;
  };
  const red = ["mean", "sum", "none"].includes(q.get("red")) ? q.get("red") : "mean";
  return {
    z: zz,
    t: clamp(Math.round(num(q.get("t"), 0)), 0, C - 1),
    T: clamp(num(q.get("T"), 1), 0.05, 100),
    ls: clamp(num(q.get("ls"), 0), 0, 1),
    red: red,
    w: fit(list(q.get("w")), 1),
    p: fit(list(q.get("p")), 0),
  };
}

function short(v) {
  return String(Math.round(v * 1e6) / 1e6);
}

function writeState() {
  const u = new URL(window.location.href);
  const q = u.searchParams;
  q.set("z", state.z.map(short).join(","));
  q.set("t", String(state.t));
  const optional = [
    ["T", state.T !== 1 ? short(state.T) : null],
    ["ls", state.ls ? short(state.ls) : null],
    ["red", state.red !== "mean" ? state.red : null],
    ["w", state.w ? state.w.map(short).join(",") : null],
    ["p", state.p ? state.p.map(short).join(",") : null],
  ];
  for (const [k, v] of optional) {
    if (v === null) q.delete(k);
    else q.set(k, v);
  }
  history.replaceState(null, "", u.pathname + "?" + q.toString());
  syncLangLinks();
}

function buildTargetOptions() {
  clear(targetSelect);
  state.z.forEach((_, c) => targetSelect.append(el("option", { value: String(c), text: s("class_n", { i: c }) })));
  targetSelect.value = String(state.t);
}

function buildRows() {
  clear(rowsBox);
  state.z.forEach((z, c) => {
    const id = "logit-" + c;
    const number = el("input", {
      type: "number", id: id, step: "0.1", value: short(z), inputmode: "decimal",
      "data-testid": "logit", "data-class": String(c),
    });
    const slider = el("input", {
      type: "range", min: "-10", max: "10", step: "0.1", value: String(clamp(z, -10, 10)),
      "aria-label": s("slider_for", { i: c }), tabindex: "-1",
    });
    number.addEventListener("input", () => {
      const v = Number(number.value);
      if (number.value === "" || !Number.isFinite(v)) {
        number.setAttribute("aria-invalid", "true");
        return;
      }
      number.removeAttribute("aria-invalid");
      state.z[c] = v;
      slider.value = String(clamp(v, -10, 10));
      schedule();
    });
    slider.addEventListener("input", () => {
      const v = Number(slider.value);
      state.z[c] = v;
      number.value = short(v);
      number.removeAttribute("aria-invalid");
      schedule();
    });
    const row = el("div", { class: "logit-row" + (c === state.t && !state.p ? " is-target" : ""), "data-row": String(c) }, [
      el("label", { for: id, text: "z" + c, title: s("logit_for", { i: c }) }),
      number,
      slider,
    ]);
    const extra = [];
    if (state.w) {
      const w = el("input", { type: "number", step: "0.1", min: "0", value: short(state.w[c]), "aria-label": s("weight_for", { i: c }) });
      w.addEventListener("input", () => {
        const v = Number(w.value);
        if (w.value !== "" && Number.isFinite(v)) {
          state.w[c] = v;
          schedule();
        }
      });
      extra.push(el("label", null, [el("span", { text: s("weights_used") }), w]));
    }
    if (state.p) {
      const p = el("input", { type: "number", step: "0.05", min: "0", max: "1", value: short(state.p[c]), "aria-label": s("prob_for", { i: c }) });
      p.addEventListener("input", () => {
        const v = Number(p.value);
        if (p.value !== "" && Number.isFinite(v)) {
          state.p[c] = v;
          schedule();
        }
      });
      extra.push(el("label", null, [el("span", { text: s("target") }), p]));
    }
    if (extra.length) row.append(el("div", { class: "extra" }, extra));
    rowsBox.append(row);
  });
  number_label_sync();
}

function number_label_sync() {
  for (const row of rowsBox.querySelectorAll(".logit-row")) {
    row.classList.toggle("is-target", !state.p && Number(row.dataset.row) === state.t);
  }
  targetSelect.disabled = Boolean(state.p);
}

function syncControls() {
  countInput.value = String(state.z.length);
  tInput.value = short(state.T);
  tSlider.value = String(Math.log2(state.T));
  lsInput.value = short(state.ls);
  lsSlider.value = String(state.ls);
  redSelect.value = state.red;
  useWeight.checked = Boolean(state.w);
  useProb.checked = Boolean(state.p);
  buildTargetOptions();
  buildRows();
}

function resize(C) {
  C = clamp(Math.round(C), MIN_C, MAX_C);
  const grow = (arr, fill) => {
    const out = arr.slice(0, C);
    while (out.length < C) out.push(fill);
    return out;
  };
  state.z = grow(state.z, 0);
  if (state.w) state.w = grow(state.w, 1);
  if (state.p) state.p = grow(state.p, 0);
  state.t = Math.min(state.t, C - 1);
  syncControls();
  schedule();
}

countInput.addEventListener("change", () => {
  const v = Number(countInput.value);
  if (Number.isFinite(v)) resize(v);
});
targetSelect.addEventListener("change", () => {
  state.t = Number(targetSelect.value);
  number_label_sync();
  schedule();
});
tInput.addEventListener("input", () => {
  const v = Number(tInput.value);
  if (tInput.value !== "" && Number.isFinite(v) && v > 0) {
    state.T = v;
    tSlider.value = String(Math.log2(v));
    schedule();
  }
});
tSlider.addEventListener("input", () => {
  state.T = Math.round(Math.pow(2, Number(tSlider.value)) * 100) / 100;
  tInput.value = short(state.T);
  schedule();
});
lsInput.addEventListener("input", () => {
  const v = Number(lsInput.value);
  if (lsInput.value !== "" && Number.isFinite(v)) {
    state.ls = v;
    lsSlider.value = String(clamp(v, 0, 1));
    schedule();
  }
});
lsSlider.addEventListener("input", () => {
  state.ls = Number(lsSlider.value);
  lsInput.value = short(state.ls);
  schedule();
});
redSelect.addEventListener("change", () => {
  state.red = redSelect.value;
  schedule();
});
useWeight.addEventListener("change", () => {
  state.w = useWeight.checked ? state.z.map(() => 1) : null;
  buildRows();
  schedule();
});
useProb.addEventListener("change", () => {
  state.p = useProb.checked ? state.z.map((_, c) => (c === state.t ? 1 : 0)) : null;
  buildRows();
  schedule();
});
document.getElementById("reset").addEventListener("click", () => {
  state = { z: DEFAULT.z.slice(), t: 0, T: 1, ls: 0, red: "mean", w: null, p: null };
  syncControls();
  schedule();
});
document.getElementById("random").addEventListener("click", () => {
  state.z = state.z.map(() => {
    const u = 1 - Math.random();
    const v = Math.random();
    return Math.round(Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v) * 20) / 10;
  });
  buildRows();
  schedule();
});

function schedule() {
  editedAt = editedAt || performance.now();
  lossOut.dataset.pending = "true";
  clearTimeout(timer);
  timer = setTimeout(compute, 12);
}

function requestBody() {
  const body = {
    logits: [state.z.map((z) => z / state.T)],
    target: state.p ? [state.p.slice()] : [state.t],
    reduction: state.red,
    label_smoothing: state.ls,
  };
  if (state.w) body.weight = state.w.slice();
  return body;
}

async function compute() {
  if (abort) abort.abort();
  abort = new AbortController();
  const body = requestBody();
  const started = editedAt || performance.now();
  writeState();
  renderCode();
  let res;
  try {
    res = await postJSON("/loss", body, abort.signal);
  } catch (e) {
    if (e.name === "AbortError") return;
    lossOut.textContent = "—";
    lossCheck.textContent = "";
    clear(warningsEl).append(el("li", { class: "error", text: e.message }));
    lossOut.dataset.pending = "false";
    editedAt = 0;
    return;
  }
  render(res);
  const ms = Math.round(performance.now() - started);
  if (rendered) {
    latencyEl.textContent = s("updated", { ms: ms });
    lossOut.dataset.latencyMs = String(ms);
  }
  rendered = true;
  lossOut.dataset.pending = "false";
  editedAt = 0;
}

function scalarLoss(res) {
  return Array.isArray(res.loss) ? res.loss[0] : res.loss;
}

function render(res) {
  const loss = scalarLoss(res);
  const torchLoss = Array.isArray(res.torch_loss) ? res.torch_loss[0] : res.torch_loss;
  lossOut.textContent = fmt(loss, 6);
  const same = agree(torchLoss, loss);
  lossCheck.textContent = "F.cross_entropy = " + fmt(torchLoss, 6) + (same ? "  ✓ " + s("agree") : "  ✗ " + s("differ"));
  clear(warningsEl);
  for (const w of res.warnings || []) warningsEl.append(el("li", { text: w }));
  if (state.p) {
    const total = state.p.reduce((a, b) => a + b, 0);
    if (Math.abs(total - 1) > 1e-9) warningsEl.append(el("li", { text: s("prob_sum", { s: fmt(total) }) }));
  }

  const C = state.z.length;
  const y = res.target_dist[0];
  const lp = res.log_probs[0];
  const prod = product(y, lp);
  const grad = res.grad ? res.grad[0] : [];
  const cols = [state.z, res.logits[0], res.shifted[0], res.exp[0], res.softmax[0], lp, y, prod, grad];
  const body = clear(table.tBodies[0]);
  for (let c = 0; c < C; c++) {
    const isTarget = !state.p && c === state.t;
    const tr = el("tr", { class: isTarget ? "is-target" : null }, [el("th", { scope: "row", text: String(c) })]);
    cols.forEach((col, k) => tr.append(el("td", { text: fmt(col[c]), class: (k === 6 || k === 7) && col[c] === 0 ? "zero" : null })));
    body.append(tr);
  }
  const foot = clear(table.tFoot);
  const tr = el("tr", null, [el("th", { scope: "row", text: "Σ" })]);
  [null, null, null, res.sum_exp[0], sum(res.softmax[0]), null, sum(y), sum(prod), sum(grad)].forEach((v) =>
    tr.append(el("td", { text: v === null ? "" : fmt(v) })));
  foot.append(tr);

  const pairs = [
    [s("max"), fmt(res.max_logit[0])],
    ["S", fmt(res.sum_exp[0])],
    ["log-sum-exp", fmt(res.log_sum_exp[0])],
    ["−Σ y · log p", fmt(-sum(prod))],
  ];
  if (!state.p) pairs.splice(3, 0, ["p_y", fmt(res.softmax[0][state.t])]);
  if (res.denominator !== null && res.denominator !== undefined) pairs.push([s("denominator"), fmt(res.denominator)]);
  fillDl(keysEl, pairs);

  const labels = state.z.map((_, c) => String(c));
  plot(document.querySelector('[data-chart="probs"]'), [
    { type: "bar", name: s("softmax"), x: labels, y: res.softmax[0], marker: { color: color("softmax") }, hovertemplate: "%{x}: %{y:.6f}<extra>p</extra>" },
    { type: "bar", name: s("target_dist"), x: labels, y: y, marker: { color: color("onehot") + "55", line: { color: color("onehot"), width: 2 } }, hovertemplate: "%{x}: %{y:.6f}<extra>y</extra>" },
  ], {
    height: 280, barmode: "group", showlegend: true, legend: { orientation: "h", y: 1.15, x: 0 },
    xaxis: { title: { text: s("class") }, type: "category" }, yaxis: { range: [0, 1.05] }, margin: { t: 40 },
  });
  plot(document.querySelector('[data-chart="grad"]'), [
    {
      type: "bar", x: labels, y: grad, marker: { color: grad.map((g) => (g < 0 ? color("softmax") : color("grad"))) },
      text: grad.map((g) => fmt(g, 3)), textposition: "outside", cliponaxis: false, textfont: { family: MONO, size: 12 },
      hovertemplate: "%{x}: %{y:.6f}<extra>∂L/∂z</extra>",
    },
  ], {
    height: 280, xaxis: { title: { text: s("class") }, type: "category" },
    yaxis: { title: { text: "∂L/∂(z/T)" }, zeroline: true }, margin: { t: 24 },
  });
}

function renderCode() {
  const C = state.z.length;
  const vec = (xs) => "[" + xs.map(pyNum).join(", ") + "]";
  const lines = [
    "import torch",
    "import torch.nn.functional as F",
    "",
    "torch.set_printoptions(precision=6)",
    "z = torch.tensor([" + vec(state.z) + "], dtype=torch.float64)",
    "T = " + pyNum(state.T) + "  # temperature",
    "logits = (z / T).requires_grad_()",
  ];
  if (state.p) lines.push("target = torch.tensor([" + vec(state.p) + "], dtype=torch.float64)  # probabilities, " + C + " classes");
  else lines.push("target = torch.tensor([" + state.t + "])  # class index");
  const args = ["logits", "target"];
  if (state.w) {
    lines.push("weight = torch.tensor(" + vec(state.w) + ", dtype=torch.float64)");
    args.push("weight=weight");
  }
  if (state.red !== "mean") args.push('reduction="' + state.red + '"');
  if (state.ls) args.push("label_smoothing=" + pyNum(state.ls));
  lines.push("loss = F.cross_entropy(" + args.join(", ") + ")");
  lines.push("loss.sum().backward()");
  lines.push("");
  lines.push('print("softmax:", F.softmax(logits, dim=1))');
  lines.push('print("loss:", loss)');
  lines.push('print("grad:", logits.grad)');
  codeEl.textContent = lines.join("\n");
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (e) {
    const area = el("textarea", { class: "visually-hidden", "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (err) {
      ok = false;
    }
    area.remove();
    return ok;
  }
}
async function copyAndTell(text) {
  const ok = await copy(text);
  copyStatus.textContent = ok ? s("copied") : s("copy_failed");
  setTimeout(() => { copyStatus.textContent = ""; }, 2500);
}
document.getElementById("copy-code").addEventListener("click", () => copyAndTell(codeEl.textContent));
document.getElementById("copy-link").addEventListener("click", () => copyAndTell(window.location.href));

syncControls();
schedule();
