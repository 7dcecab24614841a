/* Small charts drawn as plain SVG, for the views that follow every input: a chart costs well under
 * a millisecond to redraw here, where plotly.js takes about 15 ms (python -m bench.explainer
 * measures both), so every chart on screen can follow a dragged logit within a frame.
 *
 * Each chart is redrawn only when it is on screen or about to be (two IntersectionObservers track
 * them all): a chart on screen at once, in the frame; a chart near the screen right after that
 * frame is painted, so that the frame waits for the charts in view only (on / scrolled to the
 * stage cards, half the charts it drew were off screen); a chart elsewhere keeps its latest
 * figure and draws it when it scrolls near, so none is ever seen stale. Each SVG is one image to
 * assistive technology: role="img", an aria-label that names it (and, for the stage charts, says
 * in a sentence the target's value and the largest), a <desc> listing every number, and its
 * drawing hidden, so that it is never read as a run of numbers. Colours meet WCAG AA on the
 * white card: text 4.5:1, shapes 3:1 (see LIGHT).
 * The SVG is built node by node: every label is text, never markup. */
import { afterPaint, color, fmt, patchChildren, s, sketch, subscriptParts } from "./common.js";

const NEAR = "600px 0px"; // drawn this far before they scroll into view
const pending = new Map(); // div -> the draw waiting for it to come near, or for the frame's end
const near = new WeakSet(); // divs on screen or within NEAR of it
const inView = new WeakSet(); // divs on screen
const widths = new WeakMap(); // div -> its width in px, kept by the ResizeObserver
const last = new WeakMap(); // div -> its latest draw, redone when its width changes
let version = 0; // bumped by nextVersion(): which state each chart shows (data-version)
let soon = false; // whether the draws of the charts near the screen are asked for already

function runPending(div) {
  const draw = pending.get(div);
  if (!draw) return;
  pending.delete(div);
  try {
    draw();
  } catch (err) {
    console.error(err); // one chart's failure must not keep the others stale
  }
}

/** Draw the charts near the screen once the frame being drawn is painted. */
function drawNearSoon() {
  if (soon) return;
  soon = true;
  afterPaint(() => {
    soon = false;
    for (const div of [...pending.keys()]) if (near.has(div)) runPending(div);
  });
}

const watch = (set, margin) => new IntersectionObserver((entries) => {
  for (const e of entries) {
    if (e.isIntersecting) {
      set.add(e.target);
      runPending(e.target);
    } else {
      set.delete(e.target);
    }
  }
}, { rootMargin: margin });
const seen = watch(near, NEAR);
const shown = watch(inView, "0px");

const resized = new ResizeObserver((entries) => {
  for (const e of entries) {
    const w = Math.round(e.contentRect.width);
    if (w && w !== widths.get(e.target)) {
      widths.set(e.target, w);
      const draw = last.get(e.target);
      if (draw) lazy(e.target, draw);
    }
  }
});

/** A new state is being drawn: charts drawn from now on carry its number in data-version. */
export function nextVersion() {
  version += 1;
  document.documentElement.dataset.drawVersion = String(version);
  return version;
}

/** Charts not yet redrawn for the current state (scrolled away, waiting to come near). */
export function staleCharts() {
  return [...pending.keys()];
}

/** Run draw(width) now if div is on screen, right after this frame if it is near, else when it
 * comes near (the latest draw only); the first draw of a div always runs at once. */
export function lazy(div, draw) {
  const stamp = version;
  const run = () => {
    draw(widthOf(div));
    div.dataset.version = String(stamp);
  };
  last.set(div, draw);
  if (!div.dataset.observed) {
    div.dataset.observed = "1";
    seen.observe(div);
    shown.observe(div);
    resized.observe(div);
    pending.delete(div);
    run(); // the first draw: at once, so that the page has its layout
    return;
  }
  if (inView.has(div)) {
    pending.delete(div);
    run();
  } else {
    pending.set(div, run);
    if (near.has(div)) drawNearSoon();
  }
}

function widthOf(div) {
  let w = widths.get(div);
  if (!w) {
    w = div.clientWidth || 320;
    widths.set(div, w);
  }
  return w;
}

/** Roughly how wide a text is in px: CJK characters are square, others about 0.6 em. */
function textWidth(text, size) {
  let w = 0;
  for (const ch of String(text)) w += /[\u2e80-\u9fff\uff00-\uffef]/.test(ch) ? size : 0.6 * size;
  return w;
}

const SVG = "http://www.w3.org/2000/svg";

/** A sketch of an SVG element (common.js, patch): n("rect", {x: 1, ...}) or n("text", {...},
 * "its text"), where "p_y" in a text is written p with a subscript y. */
function n(tag, attrs, text) {
  const parts = text === undefined ? [] : subscriptParts(text);
  return sketch(tag, attrs, parts.map((part, k) => (k % 2 === 0 ? part : n("tspan", { "baseline-shift": "sub", "font-size": "75%" }, part))), SVG);
}

/** Show in div an SVG of these sketches (redrawn in place), with its title and text alternative:
 * the name is the title and the summary sentence its caller left in div.dataset.summary, else its
 * numbers; the drawing itself is hidden from assistive technology. */
function svg(div, width, height, title, desc, nodes) {
  const summary = div.dataset.summary;
  const root = n("svg", {
    class: "svg-chart", role: "img", width, height, viewBox: `0 0 ${width} ${height}`,
    "aria-label": summary ? title + ". " + summary : title + ": " + desc,
  });
  for (const node of nodes) {
    const a = node.attrs;
    a["aria-hidden"] = "true";
    // a lighter shape (another class than the target, another series) still keeps 3:1 on white
    if (node.tag === "rect" && a["fill-opacity"] !== undefined && Number(a["fill-opacity"]) < LIGHT) a["fill-opacity"] = String(LIGHT);
    const fill = a.fill || "";
    if (/^#[0-9a-f]{8}$/i.test(fill) && parseInt(fill.slice(7), 16) / 255 < LIGHT) a.fill = fill.slice(0, 7) + "c0";
  }
  root.children.push(n("title", {}, title), n("desc", {}, desc), ...nodes);
  patchChildren(div, [root]); // the SVG on the page, changed where it differs (common.js)
}

/** A sentence naming a bar chart's target and its largest value: "target 3 cat: 0.7492; ...". */
function summarise(labels, texts, values, target) {
  const said = [];
  if (labels[target] !== undefined) said.push(s("chart_target", { name: labels[target], value: texts[target] }));
  let top = -1;
  values.forEach((v, c) => {
    if (finite(v) && (top < 0 || v > values[top])) top = c;
  });
  if (top >= 0 && top !== target) said.push(s("chart_largest", { name: labels[top], value: texts[top] }));
  return said.join("; ");
}

const finite = (v) => typeof v === "number" && Number.isFinite(v);
/* The least opacity of a filled shape: on white it keeps every stage colour at 3:1 or more (the
 * lightest, --c-sum and --c-grad, at 3.0:1), where 0.5 gave 2.1 to 2.7:1. */
const LIGHT = 0.75;
const INK = "#14213d";
const MUTED = "#5b6478";
const GRID = "#c9cfda";

/** Horizontal bars, one per class: labels on the left, each value beside its bar (on the side
 * the bar grows to, never over the labels), the target drawn solid with a dark outline and
 * marked with ◀, the others lighter with an outline of their colour.
 * o: {labels, values, target, color, title, fmt(v), colors (per bar, optional)}, or several bars
 * a row: series [{name, values, color, colors?, opacity?}] (then no value labels) in place of
 * values and color; line: {x, label, color} (a dashed level across the rows); legend (bool) */
export function hbars(div, o) {
  lazy(div, (width) => across(div, width, o));
}

/** A legend row at the top: a swatch and the name of each series, then the dashed level. */
function legendRow(series, line) {
  const nodes = [];
  let lx = 62;
  for (const it of series) {
    nodes.push(n("rect", {
      x: lx, y: 4, width: 12, height: 12, fill: it.color, stroke: it.color, "fill-opacity": it.opacity === undefined ? 1 : it.opacity,
    }));
    nodes.push(n("text", { x: lx + 17, y: 15, "font-size": 13, fill: INK }, it.name));
    lx += 40 + textWidth(it.name, 13);
  }
  if (line) {
    // the level's label stands here, never on the bars or their values
    nodes.push(n("line", { x1: lx, x2: lx + 18, y1: 10, y2: 10, stroke: line.color, "stroke-width": 2.5, "stroke-dasharray": "5 3" }));
    nodes.push(n("text", { x: lx + 23, y: 15, "font-size": 13, "font-weight": 700, fill: line.color, class: "mono" }, line.label));
  }
  return nodes;
}

/** hbars at a given width (also columns' layout where its labels would not fit under the bars). */
function across(div, width, o) {
  const series = o.series || [{ values: o.values, color: o.color, colors: o.colors }];
  const lanes = series.length;
  const size = 13;
  const row = lanes === 1 ? 24 : 6 + 10 * lanes;
  const head = (o.legend && lanes > 1) || o.line ? 24 : 0;
  const top = 6 + head;
  const height = top + row * o.labels.length + 8;
  const labelled = lanes === 1 && o.values !== false;
  const texts = labelled ? series[0].values.map((v) => o.fmt(v)) : [];
  const gutter = Math.min(width * 0.45, 10 + Math.max(...o.labels.map((l) => textWidth(l, size))));
  const valueW = labelled ? 12 + Math.max(...texts.map((t) => textWidth(t + " ◀", size))) : 8;
  const vals = [];
  for (const it of series) for (const v of it.values) if (finite(v)) vals.push(v);
  if (o.line && finite(o.line.x)) vals.push(o.line.x);
  const lo = Math.min(0, ...vals);
  const hi = Math.max(0, ...vals);
  const left = gutter + (lo < 0 ? valueW : 4);
  const right = width - (hi > 0 || !vals.length ? valueW : 8);
  const scale = (right - left) / (hi - lo || 1);
  const x = (v) => left + (v - lo) * scale;
  const zero = x(0);
  const nodes = [n("line", { x1: zero, x2: zero, y1: top - 2, y2: height - 6, stroke: GRID })];
  if (head) nodes.push(...legendRow(o.legend && lanes > 1 ? series : [], o.line));
  if (o.line && finite(o.line.x)) {
    const lx = x(o.line.x);
    nodes.push(n("line", { x1: lx, x2: lx, y1: top - 2, y2: height - 6, stroke: o.line.color, "stroke-width": 2, "stroke-dasharray": "7 5" }));
  }
  o.labels.forEach((label, c) => {
    const y = top + c * row;
    const isTarget = c === o.target;
    nodes.push(n("text", { x: gutter - 8, y: y + row / 2 + 4, "text-anchor": "end", "font-size": size, fill: INK, "font-weight": isTarget ? 700 : null }, label));
    series.forEach((it, j) => {
      const v = it.values[c];
      const fill = it.colors ? it.colors[c] : it.color;
      if (!finite(v)) return;
      const lane = lanes === 1 ? { y: y + 4, h: row - 8 } : { y: y + 3 + j * 10, h: 9 };
      const opacity = it.opacity !== undefined ? it.opacity : isTarget || lanes > 1 ? 1 : 0.5;
      nodes.push(n("rect", {
        x: Math.min(zero, x(v)), y: lane.y, width: Math.max(Math.abs(x(v) - zero), v === 0 ? 0 : 1), height: lane.h,
        fill, "fill-opacity": opacity, stroke: isTarget ? INK : fill, "stroke-width": isTarget ? 2 : 1,
      }));
    });
    if (!labelled) return;
    const v = series[0].values[c];
    const end = finite(v) ? x(v) : zero;
    // beside the end of the bar, on the side where there is room: zeros go where no bar grows
    const after = finite(v) ? v > 0 || (v === 0 && hi > 0) : hi > 0 || lo === 0;
    nodes.push(n("text", {
      x: after ? end + 6 : end - 6, y: y + 16, "text-anchor": after ? "start" : "end", "font-size": size, class: "mono halo", fill: INK,
    }, texts[c] + (isTarget ? " ◀" : "")));
  });
  const desc = o.labels.map((l, c) => l + ": " + series.map((it) => o.fmt(it.values[c])).join(", ")).join("; ");
  svg(div, width, height, o.title, o.line ? desc + "; " + o.line.label : desc, nodes);
}

/** Horizontal bars, one per class, in the colour of a stage (--c-<stage>), the target marked:
 * the stage cards' charts. The chart is named after the card it is in. more: hbars' options
 * beside these (a line). */
export function stageBars(div, labels, values, stage, target, more) {
  if (!div) return;
  const card = div.closest(".stage-card, .panel");
  const heading = card && card.querySelector("h2, h3, h4");
  const shown = values.map((v) => (v === null ? NaN : v));
  div.dataset.summary = summarise(labels, shown.map((v) => fmt(v)), shown, target);
  hbars(div, {
    labels, values: shown, target, color: color(stage),
    title: heading ? shownText(heading) : stage, fmt: (v) => fmt(v), ...more,
  });
}

/** A heading's text as shown: without the wording hidden for another state, nor its number. */
function shownText(node) {
  const copy = node.cloneNode(true);
  for (const part of copy.querySelectorAll("[hidden], [aria-hidden='true']")) part.remove();
  return copy.textContent.trim();
}

/** White or ink, whichever reads better on this hex colour at this opacity over white. */
function inkOn(hex, opacity) {
  const rgb = [1, 3, 5].map((k) => (parseInt(hex.slice(k, k + 2), 16) * opacity + 255 * (1 - opacity)) / 255);
  const lin = rgb.map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
  const lum = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
  return 1.05 / (lum + 0.05) >= (lum + 0.05) / (0.0157 + 0.05) ? "#fff" : INK; // INK's luminance: 0.0157
}

/** One horizontal bar made of a segment per class, end to end, with the total beside it.
 * o: {values, labels, target, color, targetColor, title, total (text), legend (text), fmt} */
export function stack(div, o) {
  lazy(div, (width) => {
    const left = 8;
    const total = o.values.reduce((a, v) => a + (finite(v) ? v : 0), 0) || 1;
    const scale = (width - 16) / total;
    let x = left;
    const nodes = [];
    const outline = []; // the target's segment outlined in ink, drawn last so no neighbour covers it
    o.values.forEach((v, c) => {
      const w = finite(v) ? v * scale : 0;
      const isTarget = c === o.target;
      const fill = isTarget ? o.targetColor : o.color;
      const opacity = isTarget || c % 2 ? 1 : LIGHT;
      nodes.push(n("rect", { x, y: 8, width: w, height: 34, fill, "fill-opacity": opacity, stroke: "#fff" }));
      if (isTarget) outline.push(n("rect", { x: x + 1, y: 9, width: Math.max(w - 2, 0), height: 32, fill: "none", stroke: INK, "stroke-width": 2.5 }));
      if (w >= 16) {
        nodes.push(n("text", { x: x + w / 2, y: 30, "text-anchor": "middle", "font-size": 13, fill: inkOn(fill, opacity), "font-weight": 700, class: "mono" }, String(c)));
      }
      x += w;
    });
    nodes.push(...outline);
    nodes.push(n("text", { x: left, y: 64, "font-size": 13, fill: INK, class: "mono" }, o.total));
    nodes.push(n("rect", { x: left + 1, y: 77, width: 12, height: 12, fill: o.targetColor, stroke: INK, "stroke-width": 2.5 }));
    nodes.push(n("text", { x: left + 20, y: 87, "font-size": 13, fill: INK }, o.legend));
    const texts = o.values.map((v) => o.fmt(v));
    div.dataset.summary = o.total + "; " + summarise(o.labels, texts, o.values, o.target);
    svg(div, width, 96, o.title, o.labels.map((l, c) => l + ": " + texts[c]).join("; "), nodes);
  });
}

function ticks(lo, hi, count) {
  const span = hi - lo || 1;
  const raw = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((v) => v >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) out.push(Math.abs(v) < 1e-12 * span ? 0 : v);
  return out;
}

function integerTicks(count) {
  const step = Math.max(1, Math.ceil(count / 6));
  const out = [];
  for (let v = 0; v <= count; v += step) out.push(v);
  return out;
}

/** Grid lines and tick labels for a plot box [l, t, r, b] over ranges xr and yr: the nodes, and
 * the maps from values to pixels. */
function axes(width, height, box, xr, yr, o) {
  const [l, t, r, b] = box;
  const X = (v) => l + ((v - xr[0]) / (xr[1] - xr[0] || 1)) * (r - l);
  const Y = (v) => b - ((v - yr[0]) / (yr[1] - yr[0] || 1)) * (b - t);
  const nodes = [];
  for (const v of ticks(yr[0], yr[1], 4)) {
    nodes.push(n("line", { x1: l, x2: r, y1: Y(v), y2: Y(v), stroke: v === 0 ? "#8c95a8" : GRID }));
    nodes.push(n("text", { x: l - 6, y: Y(v) + 4, "text-anchor": "end", "font-size": 12, fill: MUTED, class: "mono" }, o.fmtY(v)));
  }
  if (o.xTicks) {
    for (const v of o.integerX ? integerTicks(xr[1]) : ticks(xr[0], xr[1], 5)) {
      nodes.push(n("text", { x: X(v), y: b + 16, "text-anchor": "middle", "font-size": 12, fill: MUTED, class: "mono" }, o.fmtX(v)));
    }
  }
  if (o.xTitle) nodes.push(n("text", { x: (l + r) / 2, y: height - 4, "text-anchor": "middle", "font-size": 13, fill: INK }, o.xTitle));
  if (o.yTitle) {
    const mid = (t + b) / 2;
    nodes.push(n("text", { x: 12, y: mid, "text-anchor": "middle", "font-size": 13, fill: INK, transform: `rotate(-90 12 ${mid})` }, o.yTitle));
  }
  return { X, Y, nodes };
}

/** A curve y = f(x) with marked points on it or off it, and a dashed level with its label.
 * o: {f, x: [lo, hi], y: [lo, hi], color, points: [{x, y, label, r, name}], line: {y, label},
 * xTitle, yTitle, title, fmt} (a point's label is drawn beside it; its name only described) */
export function curve(div, o) {
  lazy(div, (width) => {
    const height = 240;
    const a = axes(width, height, [58, 10, width - 12, height - 44], o.x, o.y, {
      fmtY: (v) => o.fmt(v, 1), fmtX: (v) => o.fmt(v, 1), xTicks: true, xTitle: o.xTitle, yTitle: o.yTitle,
    });
    const pts = [];
    for (let k = 0; k <= 160; k++) {
      const xv = o.x[0] + ((o.x[1] - o.x[0]) * k) / 160;
      const yv = o.f(xv);
      if (finite(yv) && yv <= o.y[1]) pts.push(a.X(xv).toFixed(1) + "," + a.Y(yv).toFixed(1));
    }
    const nodes = [...a.nodes, n("polyline", { points: pts.join(" "), fill: "none", stroke: o.color, "stroke-width": 3 })];
    if (o.line && finite(o.line.y)) {
      const ly = a.Y(Math.min(o.line.y, o.y[1]));
      nodes.push(n("line", { x1: a.X(o.x[0]), x2: a.X(o.x[1]), y1: ly, y2: ly, stroke: o.color, "stroke-width": 2, "stroke-dasharray": "7 5" }));
      nodes.push(n("text", { x: a.X(o.x[1]) - 4, y: ly - 6, "text-anchor": "end", "font-size": 14, fill: INK, class: "mono" }, o.line.label));
    }
    for (const p of o.points) {
      if (!finite(p.x) || !finite(p.y)) continue;
      const px = a.X(p.x);
      const py = a.Y(Math.min(p.y, o.y[1]));
      const leftSide = px > width * 0.6;
      nodes.push(n("circle", { cx: px, cy: py, r: p.r || 7, fill: o.color, stroke: "#fff", "stroke-width": 2 }));
      if (p.label) {
        nodes.push(n("text", {
          x: leftSide ? px - 12 : px + 12, y: py - 10, "text-anchor": leftSide ? "end" : "start", "font-size": 14, fill: INK, class: "mono",
        }, p.label));
      }
    }
    const said = o.points.map((p) => p.label || p.name + ": p = " + o.fmt(p.x) + ", −log p = " + o.fmt(p.y));
    if (o.line) said.push(o.line.label);
    svg(div, width, height, o.title, said.join("; "), nodes);
  });
}

/** Vertical bars, one group per label, a bar per series; an optional horizontal line (a mean)
 * with its label in the legend row. Where the labels would not fit under their bars (a phone, a
 * big batch) the same chart is drawn across (hbars), never with turned labels.
 * o: {labels, series: [{name, values, color, colors?, opacity?}], line: {y, label, color}, target
 * (the group drawn across as the target), yTitle, title, fmt, legend (bool), values (false: no
 * value labels), tall (px)} */
export function columns(div, o) {
  lazy(div, (width) => {
    const slotW = (width - 72) / Math.max(1, o.labels.length);
    if (Math.max(...o.labels.map((l) => textWidth(l, 12))) > slotW - 6) {
      across(div, width, { ...o, line: o.line && { ...o.line, x: o.line.y } });
      return;
    }
    const height = o.tall || 260;
    const head = o.legend || o.line ? 24 : 0;
    const vals = [];
    for (const series of o.series) for (const v of series.values) if (finite(v)) vals.push(v);
    if (o.line && finite(o.line.y)) vals.push(o.line.y);
    let lo = Math.min(0, ...vals);
    let hi = Math.max(0, ...vals);
    const pad = (hi - lo || 1) * 0.12;
    if (hi > 0) hi += pad;
    if (lo < 0) lo -= pad;
    const bottom = height - 40;
    const a = axes(width, height, [62, 10 + head, width - 10, bottom], [0, o.labels.length], [lo, hi], {
      fmtY: (v) => o.fmt(v, 2), yTitle: o.yTitle,
    });
    const nodes = [...a.nodes];
    if (o.line && finite(o.line.y)) {
      const y = a.Y(o.line.y);
      nodes.push(n("line", { x1: a.X(0), x2: a.X(o.labels.length), y1: y, y2: y, stroke: o.line.color, "stroke-width": 2.5, "stroke-dasharray": "7 5" }));
    }
    const slot = a.X(1) - a.X(0);
    const barW = (slot * 0.72) / o.series.length;
    o.labels.forEach((label, k) => {
      const cx = a.X(k + 0.5);
      o.series.forEach((series, j) => {
        const v = series.values[k];
        if (!finite(v)) return;
        const x0 = cx - (slot * 0.72) / 2 + j * barW;
        const fill = series.colors ? series.colors[k] : series.color;
        // the target group as hbars draws it: solid with a dark outline, the others lighter
        const marked = o.target !== undefined && o.series.length === 1;
        const opacity = series.opacity !== undefined ? series.opacity : marked && k !== o.target ? 0.5 : 1;
        nodes.push(n("rect", {
          x: x0, y: Math.min(a.Y(0), a.Y(v)), width: Math.max(1, barW - 2), height: Math.max(Math.abs(a.Y(v) - a.Y(0)), 1),
          fill, "fill-opacity": opacity, stroke: marked && k === o.target ? INK : fill, "stroke-width": marked && k === o.target ? 2 : 1.5,
        }));
        if (o.values !== false && o.series.length === 1 && slot > 34) {
          // drawn over the dashed level with a halo, so that the level never strikes a value out
          nodes.push(n("text", {
            x: x0 + barW / 2, y: v >= 0 ? a.Y(v) - 5 : a.Y(v) + 14, "text-anchor": "middle", "font-size": 12, fill: INK, class: "mono halo",
          }, o.fmt(v)));
        }
      });
      nodes.push(n("text", { x: cx, y: bottom + 16, "text-anchor": "middle", "font-size": 12, fill: INK }, label));
    });
    if (head) nodes.push(...legendRow(o.legend ? o.series : [], o.line));
    const desc = o.labels.map((l, k) => l + ": " + o.series.map((series) => o.fmt(series.values[k])).join(", ")).join("; ");
    svg(div, width, height, o.title, o.line ? desc + "; " + o.line.label : desc, nodes);
  });
}

/** A line through a series of values (the loss after each step). o: {values, color, title,
 * xTitle, yTitle, fmt} */
export function line(div, o) {
  lazy(div, (width) => {
    const height = 180;
    const vals = o.values.filter(finite);
    const hi = Math.max(1e-9, ...vals) * 1.1;
    const count = Math.max(1, o.values.length - 1);
    const a = axes(width, height, [58, 10, width - 14, height - 40], [0, count], [0, hi], {
      fmtY: (v) => o.fmt(v, 2), fmtX: (v) => String(v), xTicks: true, integerX: true, xTitle: o.xTitle, yTitle: o.yTitle,
    });
    const pts = o.values.map((v, k) => (finite(v) ? a.X(k).toFixed(1) + "," + a.Y(v).toFixed(1) : null)).filter(Boolean);
    const nodes = [...a.nodes, n("polyline", { points: pts.join(" "), fill: "none", stroke: o.color, "stroke-width": 2.5 })];
    o.values.forEach((v, k) => {
      if (finite(v)) nodes.push(n("circle", { cx: a.X(k), cy: a.Y(v), r: 3.5, fill: o.color }));
    });
    svg(div, width, height, o.title, o.values.map((v, k) => k + ": " + o.fmt(v)).join("; "), nodes);
  });
}
