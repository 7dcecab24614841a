/* Your Net beside ours: per picture on /upload (two /predict answers for the same form), and as
 * two cards on /model (two /evaluate answers, drawn with the figures the server builds for the
 * shipped card, app/training/figures.py, through POST /model/figures). */
import { s, fmt, el, clear, postJSON, postForm, drawFigure, className } from "./common.js";
import { mountWeights } from "./weights.js";

function argmax(xs) {
  return xs.reduce((best, v, i) => (v > xs[best] ? i : best), 0);
}

/** Row k's logits, softmax and loss from both Nets, class by class, side by side (n: the number
 * of its picture in the batch, k + 1 unless some were left out). */
export function compareTable(ours, yours, k, n = k + 1) {
  const nets = [[s("our_net"), ours], [s("your_net"), yours]];
  const head1 = el("tr", null, [el("td"), ...nets.map(([name]) => el("th", { scope: "colgroup", colspan: 2, text: name }))]);
  const head2 = el("tr", null, [
    el("th", { scope: "col", text: s("class") }),
    ...nets.flatMap(() => [el("th", { scope: "col", text: s("logit") }), el("th", { scope: "col", text: s("softmax") })]),
  ]);
  const body = el("tbody");
  const best = nets.map(([, a]) => argmax(a.logits[k]));
  ours.classes.forEach((name, c) => {
    body.append(el("tr", null, [
      el("th", { scope: "row", text: className(name) }),
      ...nets.flatMap(([, a], n) => [
        el("td", { text: fmt(a.logits[k][c]), class: c === best[n] ? "is-max" : null }),
        el("td", { text: fmt(a.softmax[k][c]), class: c === best[n] ? "is-max" : null }),
      ]),
    ]));
  });
  const foot = el("tfoot", null, [el("tr", null, [
    el("th", { scope: "row", text: s("loss") }),
    ...nets.map(([, a], n) => el("td", { colspan: 2, text: fmt(a.per_element_loss[k]), dataset: { net: n ? "upload" : "shipped" } })),
  ])]);
  return el("div", { class: "table-scroll weights-compare", tabindex: "0", role: "region", "aria-label": s("compare_caption", { i: n }) }, [
    el("table", { class: "num-table" }, [el("thead", null, [head1, head2]), body, foot]),
  ]);
}

/** The batch loss of your Net, under ours (anchor: the paragraph that shows ours). */
export function batchLoss(anchor, yours, reduction) {
  let line = document.getElementById("yours-batch-loss");
  if (!line) {
    line = el("p", { class: "big-loss weights-batch", id: "yours-batch-loss" });
    anchor.after(line);
  }
  line.hidden = !yours;
  if (!yours) return;
  const value = reduction === "none" ? "[" + yours.per_element_loss.map((v) => fmt(v)).join(", ") + "]" : fmt(yours.loss);
  clear(line).append(el("span", { text: s("your_batch_loss") + " " }), el("output", { class: "loss-value", "data-testid": "yours-loss-value", text: value }));
}

/** /model: the picker, and while a file is chosen both Nets' cards on the shipped test subset. */
export function mountCards() {
  const section = document.getElementById("weights-cards");
  const status = document.getElementById("weights-cards-status");
  let serial = 0;

  async function card(who, answer) {
    const root = section.querySelector('[data-card="' + who + '"]');
    root.querySelector('[data-card-stat="accuracy"]').textContent = (answer.test_accuracy * 100).toFixed(1) + "%";
    root.querySelector('[data-card-stat="loss"]').textContent = fmt(answer.mean_loss);
    root.querySelector('[data-card-stat="images"]').textContent = answer.test_images.toLocaleString("en-US");
    const lang = document.documentElement.lang;
    const figures = await postJSON("/model/figures?lang=" + encodeURIComponent(lang), {
      per_class_accuracy: answer.per_class_accuracy,
      confusion_matrix: answer.confusion_matrix,
    });
    for (const div of root.querySelectorAll("[data-card-figure]")) drawFigure(div, figures[div.dataset.cardFigure]);
    root.dataset.sha256 = answer.weights_sha256;
  }

  async function run(chosen) {
    const mine = ++serial;
    section.hidden = !chosen;
    section.dataset.state = "loading";
    if (!chosen) return;
    status.hidden = false;
    status.classList.remove("error");
    status.textContent = s("evaluating");
    try {
      const empty = new FormData();
      const [ours, yours] = await Promise.all([postForm("/evaluate", empty), weights.post("/evaluate", empty)]);
      if (mine !== serial) return;
      if (!yours) {
        section.hidden = true;
        return;
      }
      await Promise.all([card("shipped", ours), card("upload", yours)]);
      if (mine !== serial) return;
      status.hidden = true;
      section.dataset.state = "ready";
    } catch (e) {
      if (mine !== serial) return;
      status.textContent = e.message;
      status.classList.add("error");
      section.dataset.state = "error";
    }
  }

  const weights = mountWeights(run);
}
