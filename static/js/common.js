/* Shared helpers for every page: strings, number formatting, DOM building, API calls, charts.
 * Everything that shows text a user typed or uploaded goes through textContent, never parsed as HTML.
 * The page's data (language, messages, class names) comes from its <script type="application/json">. */
const data = JSON.parse(document.getElementById("page-data").textContent);
/** The CIFAR-10 class names in label order, as the API speaks them. */
export const CLASSES = data.classes;

/** A page string with {name} placeholders filled in (plain text). */
export function s(key, values) {
  const text = data.strings[key];
  return fill(text === undefined ? key : text, values);
}

function fill(text, values) {
  if (!values) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in values ? String(values[name]) : m));
}

/** The page's message named by a prefix and a value the server gave (a code, a card's text),
 * or undefined where the page has none. */
function named(prefix, value) {
  return Object.hasOwn(data.strings, prefix + value) ? data.strings[prefix + value] : undefined;
}

/** A training detail of the model card in the page's language where the page has it (the
 * shipped card's), else as the card says it. */
export function cardText(text) {
  return (typeof text === "string" && named("card_", text)) || text;
}

/** A CIFAR-10 class name in the page's language. */
export function className(name) {
  return data.classNames[name] || String(name);
}

/** Fixed decimals for tables; exponent notation only where fixed would hide the value. */
export function fmt(x, digits) {
  const d = digits === undefined ? 4 : digits;
  if (x === null || x === undefined) return "NaN";
  if (typeof x !== "number") return String(x);
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
  const a = Math.abs(x);
  let out;
  if (a !== 0 && (a < Math.pow(10, -d) || a >= 1e7)) out = x.toExponential(2);
  else out = x.toFixed(d);
  if (/^-0\.?0*$/.test(out)) out = out.slice(1);
  return out.replace("-", "−");
}

/** Python-friendly number text for code snippets and URLs: shortest round-trip form. */
export function pyNum(x) {
  if (!Number.isFinite(x)) return "float('nan')";
  const t = String(x);
  return /[.eE]/.test(t) ? t : t + ".0";
}

/** The sum of a row of numbers; null (a NaN in JSON) makes it NaN. */
export function sum(xs) {
  return xs.reduce((a, b) => a + (b === null ? NaN : b), 0);
}

/** Whether a value agrees with its reference: within 1e-9 relative, or both NaN (JSON null), which
 * is agreement too: PyTorch gives NaN where the stages do. */
export function agree(value, ref) {
  const a = value === null || value === undefined ? NaN : value;
  const b = ref === null || ref === undefined ? NaN : ref;
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  if (!Number.isFinite(a) || !Number.isFinite(b)) return a === b;
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));
}

/** y_c * log p_c, with 0 * (-inf) taken as 0 the way PyTorch's masked sum does. */
export function product(y, logp) {
  return y.map((v, c) => (v === 0 ? 0 : v * (logp[c] === null ? -Infinity : logp[c])));
}

/** Create an element: el("td", {class: "x", text: "1"}, [children]). */
export function el(tag, attrs, children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
  }
  if (children) for (const c of children) if (c) node.append(c);
  return node;
}

/** A text cut where "w_y" means w with a subscript y: [text, subscript, text, ...]. Only a single
 * letter or digit after "_" is a subscript, so that names such as cross_entropy stay as written. */
export function subscriptParts(text) {
  return String(text).split(/_(\w)(?!\w)/);
}

/** Text in which "w_y" is written w with a subscript y, as nodes for an element. */
export function subscripted(text) {
  return subscriptParts(text).map((part, k) => (k % 2 === 0 ? part : el("sub", { text: part })));
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

/* Redrawing in place. The stack has no framework to compare a view with the one on the page, and
 * views that were built anew after each input (the stage table, the charts, the key numbers)
 * made the browser restyle, reshape and lay out every label again, changed or not: on / with the
 * stage cards on screen, about 21 ms of layout and 6 ms of paint per edit of a logit on a 2-core
 * machine (a Chromium trace of python -m bench.explainer), where the budget is 33 ms for all of
 * the frame; redrawn in place, about 5 ms and 3 ms. patch() and patchChildren() take a view made
 * afresh and make the one on the page the same, touching only the attributes and texts that
 * differ: same DOM, same text alternatives, and what did not change is left alone (an <img> is
 * not loaded again). For views drawn from data only: what is kept keeps its listeners, and what
 * replaces it comes without.
 *
 * A view is made of strings (text), nodes built detached (el()), or sketches of elements,
 * {ns, tag, attrs: {name: "value"}, children: [...]}: cheaper to make than nodes where most of
 * the view is kept (a chart's hundred shapes and labels), and turned into nodes only where they
 * are new. */

const HTML = "http://www.w3.org/1999/xhtml";

/** A sketch of an element, el()'s way: sketch("td", {class: "x", text: "1"}, [children]), its
 * attributes given as text (true: present; null, undefined, false: left out), in the namespace
 * ns (HTML where none is given). */
export function sketch(tag, attrs, children, ns) {
  const out = { ns: ns || HTML, tag, attrs: {}, children: [] };
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") out.children.push(String(v));
      else out.attrs[k] = v === true ? "" : String(v);
    }
  }
  if (children) for (const c of children) if (c) out.children.push(c);
  return out;
}

/** A sketch (or a node, or a string) as a node. */
function made(c) {
  if (typeof c === "string") return document.createTextNode(c);
  if (c instanceof Node) return c;
  const node = document.createElementNS(c.ns, c.tag);
  for (const name of Object.keys(c.attrs)) node.setAttribute(name, c.attrs[name]);
  for (const k of c.children) if (k !== "" && k !== null && k !== undefined) node.append(made(k));
  return node;
}

/** Make node (on the page) the same as fresh (a node built detached or a sketch, with the same
 * tag): its attributes, then its children (patchChildren). */
export function patch(node, fresh) {
  const built = fresh instanceof Node;
  // by name: reading .attributes makes an Attr object of each, which costs more than the rest
  const names = built ? fresh.getAttributeNames() : Object.keys(fresh.attrs);
  for (const name of node.getAttributeNames()) if (!names.includes(name)) node.removeAttribute(name);
  for (const name of names) {
    const value = built ? fresh.getAttribute(name) : fresh.attrs[name];
    if (node.getAttribute(name) !== value) node.setAttribute(name, value);
  }
  patchChildren(node, built ? fresh.childNodes : fresh.children);
  return node;
}

/** Make node's children these (strings, nodes built detached, sketches), in order: a text keeps
 * its node and is rewritten only where it differs, an element of the same tag is patched,
 * anything else replaced; the extra children are removed. Returns node. */
export function patchChildren(node, children) {
  let old = node.firstChild;
  for (const c of Array.from(children)) {
    if (c === "" || c === null || c === undefined) continue;
    const built = c instanceof Node;
    const text = typeof c === "string" ? c : built && c.nodeType === Node.TEXT_NODE ? c.data : null;
    if (!old) {
      node.append(made(c));
      continue;
    }
    const next = old.nextSibling;
    if (text !== null && old.nodeType === Node.TEXT_NODE) {
      if (old.data !== text) old.data = text;
    } else if (text === null && old.nodeType === Node.ELEMENT_NODE &&
      old.namespaceURI === (built ? c.namespaceURI : c.ns) && old.localName === (built ? c.localName : c.tag)) {
      patch(old, c);
    } else {
      node.replaceChild(made(c), old);
    }
    old = next;
  }
  while (old) {
    const next = old.nextSibling;
    node.removeChild(old);
    old = next;
  }
  return node;
}

/** Set an element's text, rewriting its text node only where the text differs. */
export function setText(node, text) {
  return patchChildren(node, [String(text)]);
}

/** Key/value pairs ([key, value, {attributes of the value}]) as the sketches of a <dl>'s items
 * (values are plain text; a key's "p_y" is written p<sub>y</sub>). */
export function dlItems(pairs) {
  return pairs.map((p) => sketch("div", null, [
    sketch("dt", null, subscripted(p[0])),
    sketch("dd", Object.assign({ text: p[1] }, p[2] || {})),
  ]));
}

/** Key/value pairs into a <dl> (dlItems). */
export function fillDl(dl, pairs) {
  patchChildren(dl, dlItems(pairs));
}

class ApiError extends Error {}

/** A server's error or warning in the page's language: the page's message for its code with
 * the answer's params filled in; the server's own (English) sentence on an English page or for
 * a code the page does not know. */
export function said(code, params, sentence) {
  if (data.lang !== "en" && typeof code === "string") {
    const text = named("code_", code) ?? named("refused_", code);
    if (text !== undefined) return fill(text, params || {});
  }
  return sentence;
}

/** An answer with its warnings (and those of its before/after stages, /step's) in the page's
 * language, by their warning_codes. */
function localized(answer) {
  const parts = answer && typeof answer === "object" ? [answer, answer.before, answer.after] : [];
  for (const part of parts) {
    if (!part || !Array.isArray(part.warnings) || !Array.isArray(part.warning_codes)) continue;
    part.warnings = part.warnings.map((w, k) => {
      const c = part.warning_codes[k];
      return c ? said(c.code, c.params, w) : w;
    });
  }
  return answer;
}

/** The error of an answer that is not ok: its message is for the page, in the page's language;
 * status, detail (the server's sentence), code, params and the field it names (a 422 of
 * pydantic's) are kept for a page that tells errors apart or marks the field. */
async function readError(response) {
  let detail = response.status + " " + response.statusText;
  let code = null;
  let params = {};
  try {
    const body = await response.json();
    if (body && body.detail !== undefined) {
      detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    }
    if (body && typeof body.code === "string") code = body.code;
    if (body && body.params && typeof body.params === "object") params = body.params;
  } catch (e) {
    /* not JSON: keep the status line */
  }
  const shown = said(code, params, detail);
  const field = typeof params.field === "string" ? params.field : null;
  return Object.assign(new ApiError(s("error", { detail: shown })), { status: response.status, detail: detail, code: code, params: params, field: field });
}

async function request(url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    if (e && e.name === "AbortError") throw e;
    throw new ApiError(s("offline"));
  }
  if (!response.ok) throw await readError(response);
  return localized(await response.json());
}

export function postJSON(url, body, signal) {
  return request(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
    signal: signal,
  });
}

export function getJSON(url) {
  return request(url, { headers: { Accept: "application/json" } });
}

export function postForm(url, form, signal) {
  return request(url, { method: "POST", body: form, signal: signal, headers: { Accept: "application/json" } });
}

const css = getComputedStyle(document.documentElement);
const colors = new Map();
/** A colour of the page's CSS (--c-<name>), read once: a computed style is live, and reading it
 * while a redraw has left the page changed makes the browser restyle it there and then. */
export function color(name) {
  if (!colors.has(name)) colors.set(name, css.getPropertyValue("--c-" + name).trim() || "#333");
  return colors.get(name);
}
export const FONT = css.getPropertyValue("--sans").trim();
export const MONO = css.getPropertyValue("--mono").trim();

function baseLayout(extra) {
  const layout = {
    margin: { l: 56, r: 16, t: 12, b: 40 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: FONT, size: 14, color: "#14213d" },
    showlegend: false,
    bargap: 0.25,
    hoverlabel: { font: { family: MONO } },
    xaxis: { gridcolor: "#e3e7ee", zerolinecolor: "#8c95a8", automargin: true, tickfont: { family: MONO } },
    yaxis: { gridcolor: "#e3e7ee", zerolinecolor: "#8c95a8", automargin: true },
  };
  return deepMerge(layout, extra || {});
}

function deepMerge(a, b) {
  for (const [k, v] of Object.entries(b)) {
    if (v && typeof v === "object" && !Array.isArray(v) && a[k] && typeof a[k] === "object") {
      deepMerge(a[k], v);
    } else {
      a[k] = v;
    }
  }
  return a;
}

const CONFIG = { displayModeBar: false, responsive: true, displaylogo: false, showTips: false };

/** Draw or update a chart in place. */
export function plot(div, traces, layout) {
  drawFigure(div, { data: traces, layout: baseLayout(layout) });
}

/** Draw a whole figure, {data, layout}, as plotly.py's Figure.to_json() writes it. */
export function drawFigure(div, figure) {
  // window.Plotly: the vendored plotly.js, a classic script that runs before this module.
  if (!div || !window.Plotly) return;
  window.Plotly.react(div, figure.data, figure.layout, CONFIG);
}

/** Run f once the frame being drawn has been painted: a message posted from inside a frame's
 * rendering is delivered right after it (and messages in the order they were posted). */
export function afterPaint(f) {
  const channel = new MessageChannel();
  channel.port1.onmessage = f;
  channel.port2.postMessage(null);
}

/** Keep the language-switch links in step with the current query string. */
export function syncLangLinks() {
  const here = new URL(window.location.href);
  for (const a of document.querySelectorAll("[data-lang-link]")) {
    const u = new URL(here.pathname + here.search, window.location.origin);
    u.searchParams.set("lang", a.dataset.langLink);
    a.setAttribute("href", u.pathname + u.search);
  }
}

/* The batch of /upload, kept for /train in this tab's sessionStorage (never on the server): the
 * 32×32 PNG the network saw of each picture (the /predict answer's preview, which /step decodes
 * to the very same pixels as the original), its file name, its true label (a class index, or
 * null when none was set) and the class the network predicted. At most 64 pictures (about 4 kB
 * each), and nothing is kept past BATCH_MAX_CHARS. */
const BATCH_KEY = "ce-explainer.batch.v1";
const BATCH_MAX_CHARS = 1000000;
const PREVIEW = /^data:image\/png;base64,[A-Za-z0-9+/]+=*$/;

function classIndex(v) {
  return Number.isInteger(v) && v >= 0 && v < CLASSES.length;
}

/** Keep a batch ([{name, preview, label, predicted}]); an empty one removes what was kept. */
export function keepBatch(items) {
  try {
    const text = JSON.stringify(items.slice(0, 64));
    if (!items.length || text.length > BATCH_MAX_CHARS) sessionStorage.removeItem(BATCH_KEY);
    else sessionStorage.setItem(BATCH_KEY, text);
  } catch (e) {
    /* storage full or switched off: /train then offers the tutorial's batch only */
  }
}

/** The batch kept by keepBatch, checked item by item; [] when there is none. */
export function keptBatch() {
  let items;
  try {
    items = JSON.parse(sessionStorage.getItem(BATCH_KEY) || "[]");
  } catch (e) {
    return [];
  }
  if (!Array.isArray(items)) return [];
  return items.filter((it) => it && typeof it.name === "string" && typeof it.preview === "string" &&
    PREVIEW.test(it.preview) && (it.label === null || classIndex(it.label)) && classIndex(it.predicted));
}

/** A data: URL's bytes as a Blob (fetch() may not read data: URLs under the page's CSP). */
export function dataUrlBlob(url) {
  const comma = url.indexOf(",");
  const type = url.slice(5, url.indexOf(";"));
  const bytes = base64Bytes(url.slice(comma + 1));
  return new Blob([bytes], { type: type });
}

/** Base64 text to bytes. */
export function base64Bytes(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}
