/* The instrument of the explainer (/) and the sandbox: a batch of logits, their targets and the
 * options of the loss, each control live. On every input the JavaScript mirror of the engine
 * (engine.js) computes every stage and the page redraws what is on screen within the frame; the
 * same state then goes to POST /loss (debounced, the latest only) and the page says whether
 * PyTorch agrees with every stage, or where it differs. A state PyTorch refuses (a label out of
 * range, one-hot labels as integers, ...) is sent to POST /try, which answers with PyTorch's own
 * error. The state lives in the address bar, written so that a copied link reproduces it. */
import { s, fmt, pyNum, el, clear, patchChildren, setText, postJSON, color, syncLangLinks, subscripted, afterPaint } from "./common.js";
import { crossEntropy, differences, entropyParts } from "./engine.js";
import { renderStages } from "./stages.js";
import { columns, line, lazy, nextVersion } from "./charts.js";

export const MAX_ROWS = 8;
export const IGNORE = -100;
const FORMS = ["index", "one_hot_float", "one_hot_long", "labels_float", "class_called", "soft"];
const REFUSED_FORMS = new Set(["one_hot_long", "labels_float", "class_called"]);
const CHECK_DELAY_MS = 150; // how long the state must hold still before PyTorch is asked
const $ = (id) => document.getElementById(id);

/** A plain number for the loss readout (ASCII, so that a test or a screen reader reads it). */
export function plain(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-4 || a >= 1e7) ? x.toExponential(5) : x.toFixed(6);
}

/** Parse a number the way the fields accept it: finite, or null (with the reason). */
export function parseNumber(text, input) {
  // a number field that cannot read what was typed (1e309, 1e) has the value ""
  if (input && input.validity && input.validity.badInput) return { value: null, why: s("err_unreadable") };
  const t = String(text).trim().replace("−", "-");
  if (t === "") return { value: null, why: s("err_empty") };
  const v = Number(t);
  if (Number.isNaN(v)) return { value: null, why: s("err_nan", { text: t }) };
  if (!Number.isFinite(v)) return { value: null, why: s("err_overflow", { text: t }) };
  return { value: v, why: null };
}

/** The instrument. config: {
 *   page: "index" | "sandbox",
 *   names(C): class names for C classes (shown beside the logits),
 *   stageClasses(C), label(c): what the stage renderer calls the classes,
 *   defaults(): the state to start from (and to reset to) when the address bar has none,
 *   readExtra(query, state, notes), writeExtra(query, state): the page's own parameters,
 *   picture(row): {src, preview} of a row, or null,
 *   resetRow(row): the row's logits to go back to (null: the defaults'),
 *   onRender(res, state): after each redraw (the page's own views) } */
/** Keep the sticky readout's height free at the top of the page when the browser scrolls a
 * focused control into view, so focus never lands under the readout (WCAG 2.4.11). CSS alone
 * cannot: the readout's height changes with its text, the language and the width. */
function keepFocusClearOf(readout) {
  if (!readout || typeof ResizeObserver === "undefined") return;
  const root = document.documentElement;
  const update = () => {
    const sticky = getComputedStyle(readout).position === "sticky";
    root.style.scrollPaddingTop = sticky ? `${Math.ceil(readout.offsetHeight) + 8}px` : "";
  };
  new ResizeObserver(update).observe(readout);
  update();
}

export function createInstrument(config) {
  keepFocusClearOf($("readout"));
  let state = null;
  let edited = false; // whether the logits differ from where the page started them
  let res = null; // the mirror's stages for the state drawn last
  let drawn = 0; // the version of the state drawn last
  let version = 0;
  let inputSince = 0; // when the oldest input not yet drawn happened
  let frame = 0;
  let checkTimer = 0;
  let inflight = null;
  let server = null; // {version, answer} of the latest /loss answer for the drawn state
  let tried = null; // {version, answer} of the latest /try answer
  let steps = null; // {start: logits before the first step, losses: [...]}
  const invalid = new Map(); // field id -> why its text is not used
  const notes = []; // from reading the address bar: what was not taken as given
  const lossOut = $("loss-value");
  const verdictEl = $("verdict");

  const C = () => state.rows[0].z.length;
  const N = () => state.rows.length;
  const refused = () =>
    REFUSED_FORMS.has(state.form) ||
    state.rows.some((r) => r.t === C()) ||
    (state.form === "one_hot_float" && state.rows.some((r) => r.t < 0));

  // ---- the state in the address bar ---------------------------------------------------------

  function numbers(text) {
    const out = String(text).split(",").map((x) => Number(x));
    return out.length && out.every(Number.isFinite) && String(text).trim() !== "" ? out : null;
  }

  function read() {
    const q = new URL(window.location.href).searchParams;
    const st = config.defaults(q, notes);
    if (q.has("z")) {
      const rows = q.get("z").split(";").map(numbers);
      const ok = rows.length >= 1 && rows.length <= MAX_ROWS && rows.every((r) => r && r.length === rows[0].length) &&
        config.classesOk(rows[0].length);
      if (ok) {
        st.rows = rows.map((z, k) => ({ z, t: 0, src: st.rows[k] ? st.rows[k].src : null }));
        edited = true;
      } else {
        notes.push(s("url_bad", { name: "z" }));
      }
    }
    const c = st.rows[0].z.length;
    if (q.has("T")) { // the old sandbox's temperature: the loss saw z / T
      const T = Number(q.get("T"));
      if (Number.isFinite(T) && T > 0) {
        st.rows.forEach((r) => { r.z = r.z.map((v) => v / T); });
        if (T !== 1) notes.push(s("url_temperature", { T: pyNum(T) }));
      } else {
        notes.push(s("url_bad", { name: "T" }));
      }
    }
    if (q.has("t")) {
      const t = q.get("t").split(",").map((x) => Number(x));
      if (t.length === st.rows.length && t.every((v) => Number.isInteger(v) && ((v >= 0 && v <= c) || v === IGNORE))) {
        st.rows.forEach((r, k) => { r.t = t[k]; });
      } else {
        notes.push(s("url_bad", { name: "t" }));
      }
    }
    const option = (name, check, apply) => {
      if (!q.has(name)) return;
      const v = q.get(name);
      if (check(v)) apply(v);
      else notes.push(s("url_bad", { name }));
    };
    option("i", (v) => Number.isInteger(Number(v)) && Number(v) >= 0 && Number(v) < st.rows.length, (v) => { st.i = Number(v); });
    option("ls", (v) => v !== "" && Number(v) >= 0 && Number(v) <= 1, (v) => { st.eps = Number(v); });
    option("red", (v) => ["mean", "sum", "none"].includes(v), (v) => { st.reduction = v; });
    option("w", (v) => numbers(v) && numbers(v).length === c, (v) => { st.weight = numbers(v); });
    option("form", (v) => FORMS.includes(v) && (v !== "soft" || config.page === "sandbox"), (v) => { st.form = v; });
    option("p", (v) => {
      const rows = v.split(";").map(numbers);
      return rows.length === st.rows.length && rows.every((r) => r && r.length === c && r.every((x) => x >= 0));
    }, (v) => { st.soft = v.split(";").map(numbers); });
    option("eta", (v) => v !== "" && Number(v) > 0 && Number.isFinite(Number(v)), (v) => { st.eta = Number(v); });
    if (config.readExtra) config.readExtra(q, st, notes);
    if (st.form === "soft" && !st.soft) st.soft = st.rows.map((r) => oneHot(r.t, c));
    return st;
  }

  function write() {
    const u = new URL(window.location.href);
    const q = u.searchParams;
    for (const k of ["z", "t", "T", "i", "ls", "red", "w", "form", "p", "eta"]) q.delete(k);
    if (edited || config.page === "sandbox") q.set("z", state.rows.map((r) => r.z.map(String).join(",")).join(";"));
    q.set("t", state.rows.map((r) => String(r.t)).join(","));
    if (state.i) q.set("i", String(state.i));
    if (state.eps) q.set("ls", String(state.eps));
    if (state.reduction !== "mean") q.set("red", state.reduction);
    if (state.weight) q.set("w", state.weight.map(String).join(","));
    if (state.form !== "index") q.set("form", state.form);
    if (state.form === "soft" && state.soft) q.set("p", state.soft.map((r) => r.map(String).join(",")).join(";"));
    if (state.eta !== 1) q.set("eta", String(state.eta));
    if (config.writeExtra) config.writeExtra(q, state, edited);
    history.replaceState(null, "", u.pathname + "?" + q.toString() + u.hash);
    syncLangLinks();
  }

  // ---- the controls -------------------------------------------------------------------------

  function oneHot(t, c) {
    const row = new Array(c).fill(0);
    if (t >= 0 && t < c) row[t] = 1;
    return row;
  }

  function fieldError(input, errorEl, why) {
    if (why) {
      input.setAttribute("aria-invalid", "true");
      invalid.set(input.id, why);
    } else {
      input.removeAttribute("aria-invalid");
      invalid.delete(input.id);
    }
    if (errorEl) errorEl.textContent = why || "";
  }

  /** A number field: on every input, the value if it is one (and within the rule), else the
   * field is marked, the reason shown beside it and in the readout, and the state left as is. */
  function numberField(input, errorEl, rule, apply) {
    input.addEventListener("input", (e) => {
      const { value, why } = parseNumber(input.value, input);
      const broken = why || (value !== null && rule ? rule(value) : null);
      fieldError(input, errorEl, broken);
      if (broken) {
        changed(e, false);
        return;
      }
      apply(value);
      changed(e, true);
    });
  }

  const rowsBox = $("logit-rows");
  const targetSelect = $("target");
  let minis = []; // per class: the small bars of p and of the gradient beside each logit

  function buildLogits() {
    clear(rowsBox);
    const names = config.names(C());
    minis = [];
    invalid.clear();
    names.forEach((name, c) => {
      const id = "logit-" + c;
      const number = el("input", {
        type: "number", id, step: "0.1", inputmode: "decimal", "data-testid": "logit",
        "data-class": String(c), "aria-describedby": id + "-error",
      });
      const slider = el("input", {
        type: "range", min: "-15", max: "15", step: "0.05", tabindex: "-1",
        "aria-label": s("slider_for", { i: c }),
      });
      const error = el("span", { class: "field-error", id: id + "-error", role: "alert" });
      numberField(number, error, null, (v) => {
        state.rows[state.i].z[c] = v;
        slider.value = String(Math.max(-15, Math.min(15, v)));
        touched();
      });
      slider.addEventListener("input", (e) => {
        const v = Number(slider.value);
        state.rows[state.i].z[c] = v;
        number.value = String(v);
        fieldError(number, error, null);
        touched();
        changed(e, true);
      });
      const pBar = el("i");
      const gBar = el("i");
      const pText = el("span", { class: "mini-v" });
      const gText = el("span", { class: "mini-v" });
      const mini = el("div", { class: "mini", "aria-hidden": "true" }, [
        el("span", { class: "mini-p" }, [pBar]), pText, el("span", { class: "mini-g" }, [gBar]), gText,
      ]);
      const row = el("div", { class: "logit-row", "data-row": String(c) }, [
        el("label", { for: id, text: name }), number, slider, mini, error,
      ]);
      if (state.weight) {
        const w = el("input", { type: "number", step: "0.1", inputmode: "decimal", id: "weight-" + c, "aria-label": s("weight_for", { i: c }), value: String(state.weight[c]) });
        const werr = el("span", { class: "field-error", role: "alert" });
        numberField(w, werr, null, (v) => { state.weight[c] = v; });
        row.append(el("label", { class: "extra" }, [el("span", { text: "w" }), w]), werr);
      }
      if (state.form === "soft") {
        const p = el("input", { type: "number", step: "0.05", min: "0", inputmode: "decimal", id: "soft-" + c, "aria-label": s("prob_for", { i: c }) });
        const perr = el("span", { class: "field-error", role: "alert" });
        numberField(p, perr, (v) => (v < 0 ? s("err_negative") : null), (v) => { state.soft[state.i][c] = v; });
        row.append(el("label", { class: "extra" }, [el("span", { text: "q" }), p]), perr);
      }
      rowsBox.append(row);
      minis.push({ row, number, slider, pBar, gBar, pText, gText, soft: row.querySelector('[id^="soft-"]') });
    });
    syncRow();
  }

  function syncRow() {
    const r = state.rows[state.i];
    minis.forEach((m, c) => {
      if (document.activeElement !== m.number || !invalid.has(m.number.id)) m.number.value = String(r.z[c]);
      m.slider.value = String(Math.max(-15, Math.min(15, r.z[c])));
      if (m.soft && state.soft) m.soft.value = String(state.soft[state.i][c]);
    });
    buildTargets();
    buildRowPicker();
  }

  function buildTargets() {
    clear(targetSelect);
    const names = config.names(C());
    names.forEach((name, c) => targetSelect.append(el("option", { value: String(c), text: name })));
    targetSelect.append(el("option", { value: String(IGNORE), text: s("target_ignored", { i: IGNORE }) }));
    targetSelect.append(el("option", { value: String(C()), text: s("target_out_of_range", { i: C() }) }));
    targetSelect.value = String(state.rows[state.i].t);
    targetSelect.disabled = state.form === "soft";
    $("target-label").textContent = s("target_of_row", { k: state.i + 1 });
  }

  function buildRowPicker() {
    const box = document.querySelector('[data-role="row-picker"]');
    clear(box);
    state.rows.forEach((r, k) => {
      const pic = config.picture(r);
      const b = el("button", { type: "button", class: "row-button", "aria-pressed": String(k === state.i), "data-row-button": String(k) }, [
        pic ? el("img", { src: pic.preview || pic.src, alt: "", width: 40, height: 40, class: "pixelated" }) : null,
        el("span", { text: s("row_n", { k: k + 1 }) }),
      ]);
      b.addEventListener("click", (e) => pick(k, e));
      box.append(b);
    });
    $("add-row").disabled = N() >= MAX_ROWS;
    $("remove-row").disabled = N() <= 1;
  }

  function pick(k, e) {
    state.i = k;
    syncRow();
    changed(e, true, true);
  }

  function touched() {
    edited = true;
    steps = null;
  }

  // ---- options -------------------------------------------------------------------------------

  const eps = $("smoothing");
  const epsSlider = $("smoothing-slider");
  numberField(eps, $("smoothing-error"), (v) => (v < 0 || v > 1 ? s("err_range", { lo: 0, hi: 1 }) : null), (v) => {
    state.eps = v;
    epsSlider.value = String(v);
  });
  epsSlider.addEventListener("input", (e) => {
    state.eps = Number(epsSlider.value);
    eps.value = String(state.eps);
    fieldError(eps, $("smoothing-error"), null);
    changed(e, true);
  });
  $("reduction").addEventListener("change", (e) => {
    state.reduction = $("reduction").value;
    changed(e, true);
  });
  $("use-weight").addEventListener("change", (e) => {
    state.weight = $("use-weight").checked ? config.defaultWeight(C()) : null;
    buildLogits();
    changed(e, true);
  });
  targetSelect.addEventListener("change", (e) => {
    state.rows[state.i].t = Number(targetSelect.value);
    buildRowPicker();
    changed(e, true);
  });
  for (const radio of document.querySelectorAll('input[name="form"]')) {
    radio.addEventListener("change", (e) => {
      state.form = radio.value;
      if (state.form === "soft" && !state.soft) state.soft = state.rows.map((r) => oneHot(r.t, C()));
      buildLogits();
      changed(e, true);
    });
  }
  $("add-row").addEventListener("click", (e) => {
    if (N() >= MAX_ROWS) return;
    const r = state.rows[state.i];
    state.rows.splice(state.i + 1, 0, { z: r.z.slice(), t: r.t, src: null, base: r.z.slice() });
    if (state.soft) state.soft.splice(state.i + 1, 0, state.soft[state.i].slice());
    state.i += 1;
    touched();
    syncRow();
    changed(e, true);
  });
  $("remove-row").addEventListener("click", (e) => {
    if (N() <= 1) return;
    state.rows.splice(state.i, 1);
    if (state.soft) state.soft.splice(state.i, 1);
    state.i = Math.min(state.i, N() - 1);
    touched();
    syncRow();
    changed(e, true);
  });
  $("reset").addEventListener("click", (e) => {
    const back = config.resetRow(state.rows[state.i], state.i);
    state.rows[state.i].z = back.slice();
    steps = null;
    edited = config.isEdited ? config.isEdited(state) : true;
    syncRow();
    changed(e, true);
  });

  // one gradient step on the logits
  const etaInput = $("eta");
  numberField(etaInput, $("eta-error"), (v) => (v <= 0 ? s("err_positive") : null), (v) => { state.eta = v; });
  function step(times) {
    if (!res || refused() || invalid.size) return;
    if (!steps) steps = { start: state.rows.map((r) => r.z.slice()), losses: [scalarLoss(res)] };
    for (let k = 0; k < times; k++) {
      const g = res.grad;
      state.rows.forEach((r, i) => { r.z = r.z.map((v, c) => v - state.eta * g[i][c]); });
      res = compute();
      steps.losses.push(scalarLoss(res));
    }
    edited = true;
    syncRow();
    changed(null, true, true);
  }
  $("step").addEventListener("click", () => step(1));
  $("step10").addEventListener("click", () => step(10));
  $("unstep").addEventListener("click", (e) => {
    if (!steps) return;
    state.rows.forEach((r, i) => { r.z = steps.start[i].slice(); });
    steps = null;
    syncRow();
    changed(e, true);
  });

  function syncOptions() {
    eps.value = String(state.eps);
    epsSlider.value = String(state.eps);
    $("reduction").value = state.reduction;
    $("use-weight").checked = Boolean(state.weight);
    etaInput.value = String(state.eta);
    const radio = document.querySelector('input[name="form"][value="' + state.form + '"]');
    if (radio) radio.checked = true;
  }

  // ---- computing and drawing -----------------------------------------------------------------

  function targets() {
    if (state.form === "soft") return state.soft.map((r) => r.slice());
    if (state.form === "one_hot_float") return state.rows.map((r) => oneHot(r.t, C()));
    return state.rows.map((r) => r.t);
  }

  function options() {
    return { weight: state.weight, reduction: state.reduction, labelSmoothing: state.eps };
  }

  function compute() {
    return crossEntropy(state.rows.map((r) => r.z), targets(), options());
  }

  function scalarLoss(r) {
    if (!Array.isArray(r.loss)) return r.loss;
    return r.loss.reduce((a, b) => a + b, 0);
  }

  /** Something changed: redraw in the next frame (several inputs in a frame make one redraw).
   * e: the input event (its time starts the latency count); valid: whether the state changed. */
  function changed(e, valid, keepHistory) {
    if (!inputSince) inputSince = e && e.timeStamp ? e.timeStamp : performance.now();
    if (valid && !keepHistory && steps && e) steps = null;
    lossOut.dataset.pending = "true";
    if (!frame) frame = requestAnimationFrame(draw);
  }

  function draw() {
    const drawStart = performance.now();
    frame = 0;
    const since = inputSince;
    inputSince = 0;
    version += 1;
    nextVersion();
    const shown = version;
    afterPaint(() => {
      // from the input to this frame on screen: what bench.explainer reports (asked for first:
      // the charts near the screen, drawn once the frame is painted (charts.js), come after)
      lossOut.dataset.latencyMs = (performance.now() - since).toFixed(1);
      lossOut.dataset.pending = "false";
      lossOut.dataset.version = String(shown);
    });
    const stale = invalid.size > 0;
    document.body.classList.toggle("is-stale", stale);
    if (!stale) {
      if (refused()) {
        res = null;
        drawRefused();
      } else {
        res = compute();
        drawn = version;
        drawStages();
      }
      scheduleCheck();
    }
    for (const id of ["step", "step10"]) $(id).disabled = stale || refused();
    drawReadout();
    lossOut.dataset.drawMs = (performance.now() - drawStart).toFixed(2);
  }

  function stageContext() {
    const c = C();
    const soft = state.form === "soft" || state.form === "one_hot_float";
    return {
      classes: config.stageClasses(c),
      label: config.label,
      targets: state.rows.map((r, k) => (state.form === "soft" ? argmax(state.soft[k]) : r.t)),
      pictures: state.rows.map((r, k) => {
        const pic = config.picture(r);
        return { src: pic ? pic.src : null, preview: pic ? pic.preview : null, size: pic ? pic.size : null, title: s("row_n", { k: k + 1 }) };
      }),
      pickerKey: "rows-" + N(),
      onPick: (k) => pick(k, null),
      reduction: state.reduction,
      smoothed: state.eps > 0,
      weighted: Boolean(state.weight),
      weight: state.weight,
      probabilities: soft,
      torchOne: null,
    };
  }

  function argmax(row) {
    let best = 0;
    row.forEach((v, c) => { if (v > row[best]) best = c; });
    return best;
  }

  function drawStages() {
    document.getElementById("instrument").classList.remove("is-refused");
    // torch_loss undefined: PyTorch has not answered for this state yet (its checks wait)
    const answered = server && server.version === drawn;
    const shown = Object.assign({}, res, {
      torch_loss: answered ? server.answer.torch_loss : undefined,
      warnings: answered ? server.answer.warnings : [],
    });
    renderStages(shown, state.i, stageContext());
    drawMinis();
    lazy($("entropy-panel"), drawEntropy);
    lazy($("step-panel"), drawStep);
    lazy($("code-panel"), drawCode);
    drawForm();
    if (config.onRender) config.onRender(res, state);
  }

  function drawMinis() {
    const p = res.softmax[state.i];
    const g = res.grad[state.i];
    const gmax = Math.max(1e-300, ...g.map((v) => (Number.isFinite(v) ? Math.abs(v) : 0)));
    const t = state.rows[state.i].t;
    minis.forEach((m, c) => {
      m.pBar.style.width = (Number.isFinite(p[c]) ? p[c] * 100 : 0) + "%";
      setText(m.pText, fmt(p[c], 3));
      const share = Number.isFinite(g[c]) ? (Math.abs(g[c]) / gmax) * 50 : 0;
      m.gBar.style.width = share + "%";
      m.gBar.style.left = (g[c] < 0 ? 50 - share : 50) + "%";
      setText(m.gText, fmt(g[c], 3));
      m.row.classList.toggle("is-target", state.form !== "soft" && c === t);
    });
  }

  function drawRefused() {
    document.getElementById("instrument").classList.add("is-refused");
    drawForm();
    lazy($("code-panel"), drawCode);
  }

  function lossFormula() {
    if (!res) return "";
    if (state.reduction === "none") return " " + s("formula_none", { k: state.i + 1, n: N() });
    const terms = res.per_element_loss.map((v) => fmt(v, 4)).join(" + ");
    if (state.reduction === "sum") return " = " + terms;
    let den;
    if (state.form === "soft" || state.form === "one_hot_float") den = s("den_rows", { n: N() });
    else if (state.weight) den = s("den_weights", { d: fmt(res.denominator, 4) });
    else den = s("den_counted", { n: fmt(res.denominator, 0) });
    return " = (" + terms + ") / " + den;
  }

  function drawReadout() {
    const items = notes.map((n) => el("li", { text: n }));
    for (const why of invalid.values()) items.push(el("li", { class: "error", text: s("stale_field", { why }) }));
    if (!invalid.size && res) items.push(...readoutNotes());
    patchChildren($("notes"), items);
    if (invalid.size) {
      lossOut.classList.add("is-stale");
      setVerdict("stale", s("torch_stale"));
      return;
    }
    lossOut.classList.remove("is-stale");
    if (!res) {
      setText(lossOut, "");
      setText($("loss-formula"), "");
      const answer = tried && tried.version === version ? tried.answer : null;
      setVerdict("refused", answer && !answer.ok
        ? s("torch_refuses", { error: answer.error.type + ": " + answer.error.message })
        : s("torch_asking_refusal"));
      return;
    }
    const loss = Array.isArray(res.loss) ? res.loss[state.i] : res.loss;
    setText(lossOut, plain(loss));
    patchChildren($("loss-formula"), subscripted(lossFormula()));
    if (!server || server.version !== drawn) setVerdict("pending", s("torch_asking"));
  }

  /** The readout's notes on the state drawn: a weight that one row cancels, probabilities that
   * do not sum to 1, PyTorch's warnings. */
  function readoutNotes() {
    const list = [];
    if (N() === 1 && state.weight && state.reduction === "mean" && state.form !== "soft" && state.form !== "one_hot_float") {
      list.push(el("li", null, subscripted(s("one_row_weight"))));
    }
    if (state.form === "soft") {
      state.soft.forEach((row, k) => {
        const total = row.reduce((a, b) => a + b, 0);
        if (Math.abs(total - 1) > 1e-9) list.push(el("li", { text: s("prob_sum_row", { k: k + 1, s: fmt(total) }) }));
      });
    }
    if (server && server.version === drawn) {
      for (const w of server.answer.warnings || []) list.push(el("li", { text: w }));
    }
    return list;
  }

  function setVerdict(kind, text) {
    verdictEl.dataset.verdict = kind;
    verdictEl.dataset.version = String(version); // the state it speaks of
    verdictEl.className = "verdict " + (kind === "agrees" ? "ok" : kind === "pending" ? "" : "bad");
    setText(verdictEl, text);
  }

  // ---- asking PyTorch ------------------------------------------------------------------------

  function lossBody() {
    const body = {
      logits: state.rows.map((r) => r.z.slice()), target: targets(),
      reduction: state.reduction, label_smoothing: state.eps,
    };
    if (state.weight) body.weight = state.weight.slice();
    return body;
  }

  function tryBody(call) {
    const body = {
      call, logits: state.rows.map((r) => r.z.slice()), target: state.rows.map((r) => r.t),
      reduction: state.reduction, label_smoothing: state.eps,
    };
    if (state.weight) body.weight = state.weight.slice();
    return body;
  }

  function scheduleCheck() {
    clearTimeout(checkTimer);
    checkTimer = setTimeout(check, CHECK_DELAY_MS);
  }

  /** Once the state holds still: the address bar, then PyTorch's word on it. */
  async function check() {
    write();
    const asked = version;
    if (inflight) inflight.abort();
    inflight = new AbortController();
    const signal = inflight.signal;
    try {
      if (refused() || state.form === "one_hot_float") {
        const call = state.form === "soft" ? "index" : state.form;
        const answer = await postJSON("/try", tryBody(call), signal);
        if (asked !== version) return;
        tried = { version: asked, answer };
        drawForm();
        if (refused()) {
          drawReadout();
          return;
        }
      }
      const mine = res;
      const answer = await postJSON("/loss", lossBody(), signal);
      if (asked !== version || mine !== res) return;
      server = { version: asked, answer };
      const diffs = differences(mine, answer);
      if (diffs.length) {
        const d = diffs[0];
        const where = d.stage + (d.index.length ? "[" + d.index.join(", ") + "]" : "");
        setVerdict("differs", s("torch_differs", { where, mine: String(d.mine), theirs: String(d.theirs), n: diffs.length }));
      } else {
        setVerdict("agrees", s("torch_agrees"));
      }
      renderStages(Object.assign({}, res, { torch_loss: answer.torch_loss, warnings: answer.warnings }), state.i, stageContext());
      drawReadoutNotes(answer);
      drawForm();
    } catch (e) {
      if (e && e.name === "AbortError") return;
      if (asked !== version) return;
      setVerdict("error", e && e.message ? e.message : String(e));
    }
  }

  function drawReadoutNotes(answer) {
    const list = $("notes");
    for (const w of answer.warnings || []) list.append(el("li", { text: w }));
  }

  // ---- the panels ----------------------------------------------------------------------------

  const formResult = $("form-result");
  function drawForm() {
    const nodes = [];
    const answer = tried && tried.version === version ? tried.answer : null;
    if (refused()) {
      if (!answer) {
        nodes.push(el("p", { class: "hint", text: s("torch_asking_refusal") }));
      } else if (!answer.ok) {
        nodes.push(el("p", { class: "form-error" }, [
          el("strong", { text: s("torch_raises") + " " }),
          el("code", { text: answer.error.type + ": " + answer.error.message }),
        ]));
        nodes.push(el("p", { text: refusalWhy() }));
      }
      patchChildren(formResult, nodes);
      return;
    }
    if (state.form === "one_hot_float") {
      const index = crossEntropy(state.rows.map((r) => r.z), state.rows.map((r) => r.t), options());
      const a = scalarLoss(index);
      const torch = answer && answer.ok ? (Array.isArray(answer.value) ? answer.value.reduce((x, y) => x + y, 0) : answer.value) : null;
      nodes.push(el("dl", { class: "keynums" }, [
        el("div", null, [el("dt", { text: s("loss_class_index") }), el("dd", { text: fmt(a, 6) })]),
        el("div", null, [el("dt", { text: s("loss_one_hot_torch") }), el("dd", { text: torch === null ? "…" : fmt(torch, 6) })]),
      ]));
      const same = torch !== null && Math.abs(a - torch) <= 1e-6 * Math.max(1, Math.abs(a));
      let why = same ? s("one_hot_same") : s("one_hot_differs");
      if (state.weight && state.reduction === "mean") why = s("one_hot_weights", { n: N(), d: fmt(index.denominator, 4) });
      else if (!same && state.eps > 0) why = s("one_hot_float32");
      nodes.push(el("p", { text: why }));
      patchChildren(formResult, nodes);
      return;
    }
    nodes.push(el("p", { text: state.form === "soft" ? s("form_soft_ok") : s("form_index_ok") }));
    patchChildren(formResult, nodes);
  }

  function refusalWhy() {
    if (state.form === "one_hot_long") return s("refusal_why_one_hot_long");
    if (state.form === "labels_float") return s("refusal_why_labels_float");
    if (state.form === "class_called") return s("refusal_why_class_called");
    if (state.rows.some((r) => r.t === C())) return s("refusal_why_out_of_range");
    return s("refusal_why_ignored_one_hot");
  }

  function drawEntropy() {
    if (!res) return;
    const panel = $("entropy-panel");
    panel.classList.toggle("is-off", Boolean(state.weight));
    $("entropy-note").hidden = !state.weight;
    const q = res.target_dist[state.i];
    const lp = res.log_probs[state.i];
    const parts = entropyParts(q, lp);
    const pair = (label, value) => el("div", null, [el("dt", { text: label }), el("dd", { text: fmt(value, 6) })]);
    patchChildren($("entropy-keys"), [
      pair("H(q, p)", parts.cross),
      pair("H(q)", parts.entropy),
      pair("KL(q ‖ p)", parts.kl),
      pair("H(q) + KL", parts.entropy + parts.kl),
    ]);
    const labels = config.stageClasses(C()).map((_, c) => config.short(c));
    columns(panel.querySelector('[data-chart="entropy"]'), {
      labels, title: s("chart_q_p"), fmt: (v, d) => fmt(v, d === undefined ? 3 : d), legend: true, values: false,
      series: [
        { name: "q", values: q, color: color("onehot"), opacity: 0.55 },
        { name: "p", values: res.softmax[state.i], color: color("softmax") },
      ],
    });
  }

  function drawStep() {
    if (!res) return;
    const n = steps ? steps.losses.length - 1 : 0;
    setText($("step-count"), s("steps_taken", { n, loss: fmt(scalarLoss(res), 6) }));
    $("unstep").disabled = !steps;
    line(document.querySelector('[data-chart="history"]'), {
      values: steps ? steps.losses : [scalarLoss(res)], color: color("nll"), title: s("chart_history"),
      xTitle: s("step_axis"), yTitle: s("loss_lc"), fmt: (v, d) => fmt(v, d === undefined ? 4 : d),
    });
  }

  function callCode(name) {
    const radio = document.querySelector('input[name="form"][value="' + name + '"]');
    const code = radio && radio.closest("label").querySelector("code");
    return code ? code.textContent : "loss = criterion(outputs, labels)";
  }

  function drawCode() {
    const vec = (xs) => "[" + xs.map(pyNum).join(", ") + "]";
    const lines = [
      "import torch",
      "import torch.nn as nn",
      "import torch.nn.functional as F",
      "",
      "torch.set_printoptions(precision=6)",
      "outputs = torch.tensor([",
      ...state.rows.map((r) => "    " + vec(r.z) + ","),
      "], dtype=torch.float64, requires_grad=True)",
      "labels = torch.tensor([" + state.rows.map((r) => String(r.t)).join(", ") + "])",
    ];
    if (state.form === "soft") {
      lines.push("probabilities = torch.tensor([", ...state.soft.map((r) => "    " + vec(r) + ","), "], dtype=torch.float64)");
    }
    const args = [];
    if (state.weight) args.push("weight=torch.tensor(" + vec(state.weight) + ", dtype=torch.float64)");
    if (state.reduction !== "mean") args.push('reduction="' + state.reduction + '"');
    if (state.eps) args.push("label_smoothing=" + pyNum(state.eps));
    lines.push("criterion = nn.CrossEntropyLoss(" + args.join(", ") + ")");
    lines.push(state.form === "soft" ? "loss = criterion(outputs, probabilities)" : callCode(state.form));
    if (!refused()) {
      lines.push(state.reduction === "none" ? "loss.sum().backward()" : "loss.backward()");
      lines.push("", 'print("loss:", loss)', 'print("softmax:", F.softmax(outputs, dim=1))', 'print("grad:", outputs.grad)');
    }
    setText($("code"), lines.join("\n"));
  }

  // copying
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
    $("copy-status").textContent = ok ? s("copied") : s("copy_failed");
    setTimeout(() => { $("copy-status").textContent = ""; }, 2500);
  }
  $("copy-code").addEventListener("click", () => {
    drawCode();
    copyAndTell($("code").textContent);
  });
  $("copy-link").addEventListener("click", () => {
    write();
    copyAndTell(window.location.href);
  });

  // ---- starting ------------------------------------------------------------------------------

  return {
    /** Start (or start again) from the address bar, or the page's defaults. */
    start() {
      notes.length = 0;
      state = read();
      syncOptions();
      buildLogits();
      changed(null, true);
    },
    /** The page replaced rows (the network's logits arrived): redraw. */
    refresh() {
      syncRow();
      changed(null, true);
    },
    get state() {
      return state;
    },
    get edited() {
      return edited;
    },
    set edited(v) {
      edited = v;
    },
    setRows(rows) {
      state.rows = rows;
      state.i = Math.min(state.i, rows.length - 1);
      buildLogits();
      changed(null, true);
    },
    rebuild() {
      buildLogits();
      changed(null, true);
    },
    touched,
  };
}
