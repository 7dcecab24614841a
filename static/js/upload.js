/* The upload page: files or gallery pictures -> /predict -> per-picture results, batch loss, stages. */
import { s, fmt, el, clear, postForm, postJSON, className, CLASSES, keepBatch, said } from "./common.js";
import { renderStages, updateChecks } from "./stages.js";
import { mountWeights } from "./weights.js";
import { compareTable, batchLoss } from "./weights-views.js";
const MAX = 64;
const input = document.getElementById("file-input");
const zone = document.getElementById("dropzone");
const addMode = document.getElementById("add-mode");
const statusEl = document.getElementById("upload-status");
const list = document.getElementById("results");
const after = document.getElementById("after-results");
const reduction = document.getElementById("opt-reduction");
const smoothing = document.getElementById("opt-smoothing");
const lossOut = document.getElementById("upload-loss");
const lossLabel = document.querySelector('[data-role="loss-label"]');
const formulaEl = document.querySelector('[data-role="batch-formula"]');

/** Each item: {file: Blob, name, src (URL to show), label: "" or class index as string, owned,
 * error: the server's {code, detail, params} when it could not use this picture, else null}. */
let items = [];
let res = null;
let yours = null; // the /predict answer of the user's weights for the same form, or null
let focus = 0;
let abort = null;
let serial = 0;
/** A refusal that must outlive the run it came with (too many files, a HEIC photo). */
let notice = "";
const smoothingError = document.getElementById("smoothing-error");
const batchPanel = document.getElementById("batch-h").closest("section");
const STORE = "upload-batch";

function setStatus(text, isError) {
  statusEl.textContent = text;
  statusEl.classList.toggle("error", Boolean(isError));
  statusEl.hidden = !text;
}

/** Bring an element into view if it is not (no smooth scrolling: it moves under the reader). */
function reveal(node) {
  const box = node.getBoundingClientRect();
  if (box.top < 0 || box.top > window.innerHeight - 80) node.scrollIntoView({ block: "start" });
}

function release(list_) {
  for (const it of list_) if (it.owned) URL.revokeObjectURL(it.src);
}

function addItems(newItems, replace) {
  if (replace) {
    release(items);
    items = [];
  }
  const room = MAX - items.length;
  if (newItems.length > room) {
    release(newItems.slice(room));
    notice = s("too_many_kept", { n: MAX, dropped: newItems.length - room });
    newItems = newItems.slice(0, room);
  }
  items = items.concat(newItems);
  focus = Math.max(0, items.length - newItems.length);
  run(true);
}

function fromFiles(files) {
  const picked = [];
  notice = "";
  for (const f of files) {
    // HEIC/HEIF (what iPhones send) is not read by the server: say so before sending it.
    if (/^image\/hei[cf]/.test(f.type) || /\.hei[cf]$/i.test(f.name)) {
      notice = s("heic", { name: f.name });
      continue;
    }
    if (f.type && !f.type.startsWith("image/")) {
      setStatus(s("not_image", { name: f.name }), true);
      continue;
    }
    const it = { file: f, name: f.name, src: URL.createObjectURL(f), label: "", owned: true };
    keepData(it);
    picked.push(it);
  }
  if (picked.length) addItems(picked, !addMode.checked);
  else if (notice) setStatus(notice, true);
}

input.addEventListener("change", () => {
  fromFiles(Array.from(input.files || []));
  input.value = "";
});
for (const ev of ["dragenter", "dragover"]) {
  zone.addEventListener(ev, (e) => {
    e.preventDefault();
    zone.classList.add("is-over");
  });
}
for (const ev of ["dragleave", "drop"]) {
  zone.addEventListener(ev, () => zone.classList.remove("is-over"));
}
zone.addEventListener("drop", (e) => {
  e.preventDefault();
  if (e.dataTransfer) fromFiles(Array.from(e.dataTransfer.files || []));
});
// A drop that misses the zone must not navigate away from the page.
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", (e) => e.preventDefault());

async function galleryItem(button) {
  const r = await fetch(button.dataset.src);
  const blob = await r.blob();
  const label = String(CLASSES.indexOf(button.dataset.class));
  return { file: blob, name: button.dataset.name, src: button.dataset.src, label: label, owned: false };
}

const galleryButtons = Array.from(document.querySelectorAll(".gallery-item"));
for (const button of galleryButtons) {
  button.addEventListener("click", async () => {
    notice = "";
    try {
      addItems([await galleryItem(button)], !addMode.checked);
    } catch (e) {
      setStatus(s("offline"), true);
    }
  });
}
document.getElementById("run-gallery").addEventListener("click", async () => {
  notice = "";
  try {
    addItems(await Promise.all(galleryButtons.map(galleryItem)), true);
  } catch (e) {
    setStatus(s("offline"), true);
  }
});

document.getElementById("clear-batch").addEventListener("click", () => {
  release(items);
  items = [];
  res = null;
  keepBatch([]);
  render();
});
reduction.addEventListener("change", () => run());
const weights = mountWeights(() => run());
smoothing.addEventListener("change", () => {
  if (smoothingValid()) run();
});

/** Label smoothing is a number in [0, 1]: anything else is marked on the field, not sent, and the
 * views of the last answer are cleared rather than left standing beside it. */
function smoothingValid() {
  const raw = smoothing.value.trim();
  const ls = Number(raw);
  const ok = raw === "" || (Number.isFinite(ls) && ls >= 0 && ls <= 1) && smoothing.validity.valid;
  smoothing.setAttribute("aria-invalid", String(!ok));
  smoothingError.hidden = ok;
  smoothingError.textContent = ok ? "" : s("smoothing_range");
  if (!ok) {
    setStatus(s("smoothing_range"), true);
    if (abort) abort.abort();
    serial++;
    res = null;
    render();
  }
  return ok;
}

/** The server refused the field: marked as the form's own check marks it, with the server's
 * sentence in the page's language. */
function markSmoothing(message) {
  smoothing.setAttribute("aria-invalid", "true");
  smoothingError.hidden = false;
  smoothingError.textContent = message;
}

function smoothingValue() {
  const ls = Number(smoothing.value);
  return Number.isFinite(ls) ? ls : 0;
}

/** /predict with one label per picture: a class index, or empty where the network's own guess is
 * to be the target. */
function request() {
  const form = new FormData();
  for (const it of items) {
    form.append("image", it.file, it.name);
    form.append("label", it.label);
  }
  form.append("reduction", reduction.value);
  form.append("label_smoothing", String(smoothingValue()));
  return form;
}

async function run(userAdded) {
  save();
  if (!items.length) {
    res = null;
    keepBatch([]);
    render();
    return;
  }
  if (!smoothingValid()) return;
  if (abort) abort.abort();
  abort = new AbortController();
  const mine = ++serial;
  setStatus(s("loading"));
  if (userAdded) reveal(batchPanel); // the progress and then the results show where they appear
  try {
    const sentSmoothing = smoothingValue();
    const form = request();
    const [answer, theirs] = await Promise.all([postForm("/predict", form, abort.signal), weights.post("/predict", form, abort.signal)]);
    if (mine !== serial) return;
    answer.sentSmoothing = sentSmoothing;
    res = answer;
    yours = theirs;
    // A picture the server could not use keeps its card, with why; the stages are of the others.
    items.forEach((it, k) => (it.error = answer.images[k].error || null));
    const rows = answer.row_images;
    // For /train: the 32×32 pictures the network saw, with their labels, in this tab only.
    keepBatch(rows.map((k) => ({ name: items[k].name, preview: answer.images[k].preview, label: items[k].label === "" ? null : Number(items[k].label), predicted: CLASSES.indexOf(answer.images[k].predicted_class) })));
    // The status stays filled: a screen reader hears that the run ended and what it gave.
    let done = s("done", { n: rows.length });
    if (rows.length < items.length) done += " " + s("refused_some", { n: items.length - rows.length });
    if (!Array.isArray(res.loss)) done += " " + s("mean_loss") + " " + fmt(res.loss) + ".";
    setStatus(notice ? notice + " " + done : done, Boolean(notice) || rows.length < items.length);
  } catch (e) {
    if (e.name === "AbortError") return;
    res = null;
    refusedAll(e);
    setStatus(e.message, true);
    if (e.field === "label_smoothing") markSmoothing(e.message); // a 422 that names the field
  }
  render();
}

/** A request refused whole: the pictures' own errors onto their cards, where the server says
 * which (params.errors, by index), or where a lone picture's error names it. */
function refusedAll(e) {
  for (const it of items) it.error = null;
  if (e.status !== 422) return;
  if (e.params && Array.isArray(e.params.errors)) {
    for (const one of e.params.errors) if (items[one.index]) items[one.index].error = one.error;
  } else if (items.length === 1 && String(e.detail).startsWith(items[0].name + ": ")) {
    items[0].error = { code: e.code, detail: e.detail };
  }
}

/** The target of each row of the stages: the label sent, else the prediction. */
function targets() {
  return res.row_images.map((k) => res.images[k].target);
}

function labelSelect(it, k) {
  const id = "label-" + k;
  const select = el("select", { id: id });
  select.append(el("option", { value: "", text: s("label_none") }));
  CLASSES.forEach((name, c) => select.append(el("option", { value: String(c), text: c + " " + className(name) })));
  select.value = it.label;
  select.addEventListener("change", () => {
    it.label = select.value;
    focus = k;
    run();
  });
  const label = el("label", { for: id }, [el("span", { text: s("true_label") }), select]);
  return label;
}

function renderList() {
  clear(list);
  items.forEach((it, k) => {
    const row = res && !it.error ? res.row_images.indexOf(k) : -1; // its row in the stages
    const info = row >= 0 ? res.images[k] : null;
    const loss = info ? res.per_element_loss[row] : null;
    const native = info && info.original_size[0] === 32 && info.original_size[1] === 32; // nothing shrunk
    const pics = el("div", { class: "result-pics" }, [
      native ? null : el("figure", null, [el("img", { src: it.src, alt: "", class: "pixelated" }), el("figcaption", { text: s("original") })]),
      info ? el("figure", null, [el("img", { src: info.preview, alt: "", class: "pixelated", width: 88, height: 88 }), el("figcaption", { text: native ? s("original_is_32") : "32×32" })]) : null,
    ]);
    const facts = el("dl", { class: "result-facts" });
    if (info) {
      const target = targets()[row];
      const rows = [
        [s("predicted"), className(info.predicted_class)],
        [s("target"), className(res.classes[target]) + (info.label === null || info.label === undefined ? " (" + s("target_predicted") + ")" : "")],
        [s("loss"), fmt(loss)],
      ];
      rows.forEach(([a, b], r) => {
        facts.append(el("dt", { text: a }));
        facts.append(el("dd", { text: b, class: r === 2 ? "mono" : null }));
      });
    }
    const guessed = info && (info.label === null || info.label === undefined);
    const remove = el("button", { type: "button", class: "button button-quiet", text: s("remove") });
    remove.addEventListener("click", () => {
      release([it]);
      items.splice(k, 1);
      focus = Math.min(focus, Math.max(0, items.length - 1));
      run();
    });
    const show = el("button", { type: "button", class: "button button-quiet", text: "→ " + s("picture_n", { i: k + 1 }), "aria-pressed": String(k === focus) });
    show.addEventListener("click", () => {
      focus = k;
      render();
      const box = document.querySelector('[data-role="focus"]');
      box.scrollIntoView({ block: "start" });
      box.focus({ preventScroll: true });
    });
    const meta = info ? info.format + " · " + info.original_size.join("×") : "";
    const refused = it.error ? el("p", { class: "result-error", text: s("picture_refused") + " " + said(it.error.code, it.error.params, it.error.detail) }) : null;
    list.append(el("li", { class: "result" + (k === focus && info ? " is-focus" : "") + (it.error ? " is-refused" : "") }, [
      el("p", { class: "result-name", text: (k + 1) + ". " + it.name + (meta ? " · " + meta : "") }),
      refused,
      pics,
      info ? facts : null,
      info && yours ? compareTable(res, yours, row, k + 1) : null,
      guessed ? el("p", { class: "note", text: s("guess_note") }) : null,
      labelSelect(it, k),
      el("div", { class: "result-actions" }, info ? [show, remove] : [remove]),
    ]));
  });
}

function renderBatch() {
  batchLoss(lossOut.parentElement, yours, reduction.value);
  const per = res.per_element_loss;
  const red = reduction.value;
  if (red === "none") {
    lossLabel.textContent = s("none_loss");
    lossOut.textContent = "[" + per.map((v) => fmt(v)).join(", ") + "]";
    formulaEl.textContent = "";
    return;
  }
  lossLabel.textContent = red === "sum" ? s("sum_loss") : s("mean_loss");
  lossOut.textContent = fmt(res.loss);
  const terms = per.map((v) => fmt(v)).join(" + ");
  if (red === "sum") formulaEl.textContent = s("batch_formula_sum", { terms: terms });
  else formulaEl.textContent = s("batch_formula_mean", { terms: terms, n: fmt(res.denominator || per.length, 0) }) + " = " + fmt(res.loss);
}

function render() {
  // Rows of the stages are the pictures the server could use: row r is picture rows[r].
  const rows = res ? res.row_images : [];
  if (res && !rows.includes(focus)) focus = rows.find((k) => k > focus) ?? rows[rows.length - 1];
  renderList();
  if (!res) {
    after.hidden = true;
    if (!items.length) setStatus(s("empty_batch"));
    return;
  }
  after.hidden = false;
  renderBatch();
  const t = targets();
  const ctx = {
    classes: res.classes,
    targets: t,
    reduction: reduction.value,
    guessed: rows.map((k) => res.images[k].label === null || res.images[k].label === undefined),
    pickerKey: items.map((it) => it.name).join("|") + serial,
    pictures: rows.map((k, r) => ({ src: items[k] ? items[k].src : null, preview: res.images[k].preview, size: res.images[k].original_size, title: (k + 1) + " · " + className(res.classes[t[r]]) })),
    onPick: (r) => {
      focus = rows[r];
      render();
    },
  };
  const row = rows.indexOf(focus);
  renderStages(res, row, ctx);
  torchOne(res, row, ctx);
}

/** The fifth route: PyTorch's F.cross_entropy on this picture's logits alone, asked of /loss
 * (r: its row in the stages). */
async function torchOne(answer, r, ctx) {
  const body = { logits: [answer.logits[r]], target: [ctx.targets[r]], label_smoothing: answer.sentSmoothing };
  let one;
  try {
    one = await postJSON("/loss", body);
  } catch (e) {
    return; // the four other routes stand on their own
  }
  if (answer !== res || answer.row_images[r] !== focus) return;
  ctx.torchOne = one.torch_loss;
  updateChecks(answer, r, ctx);
}

/* The batch outlives a language switch or a reload in this tab: gallery pictures by URL, files as
 * data URLs while they fit sessionStorage (a few MB); what does not fit is left out, with a note. */
function save() {
  const kept = items.map((it) => ({ name: it.name, label: it.label, src: it.owned ? it.data || null : it.src }));
  const state = { items: kept.filter((it) => it.src), smoothing: smoothing.value, reduction: reduction.value };
  try {
    sessionStorage.setItem(STORE, JSON.stringify(state));
  } catch (e) {
    /* over the quota: the batch is not kept */
  }
}

function blobFromDataUrl(url) {
  const [head, body] = url.split(",");
  const bytes = Uint8Array.from(atob(body), (ch) => ch.charCodeAt(0));
  return new Blob([bytes], { type: head.slice(5).split(";")[0] });
}

async function restore() {
  let state = null;
  try {
    state = JSON.parse(sessionStorage.getItem(STORE) || "null");
  } catch (e) {
    state = null;
  }
  if (!state || !state.items || !state.items.length) return;
  smoothing.value = state.smoothing || "0";
  reduction.value = state.reduction || "mean";
  const back = [];
  for (const it of state.items) {
    if (it.src.startsWith("data:")) {
      const file = blobFromDataUrl(it.src);
      back.push({ file: file, name: it.name, src: URL.createObjectURL(file), label: it.label, owned: true, data: it.src });
    } else {
      const r = await fetch(it.src);
      back.push({ file: await r.blob(), name: it.name, src: it.src, label: it.label, owned: false });
    }
  }
  items = back;
  run();
}

/** Read a dropped file as a data URL for save(), if it is small enough to keep. */
function keepData(it) {
  if (!it.owned || it.file.size > 1_500_000) return;
  const reader = new FileReader();
  reader.onload = () => {
    it.data = String(reader.result);
    save();
  };
  reader.readAsDataURL(it.file);
}

restore().catch(() => setStatus(s("offline"), true));
