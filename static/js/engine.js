/* The engine (app/engine) in JavaScript: every stage of F.cross_entropy in float64, for logits of
 * shape (N, C), so that a page can redraw on every input without waiting for the server. The
 * server stays the source of truth: each state is also sent to POST /loss, and `differences`
 * below says where the two disagree. tests/browser/test_explainer.py runs this file in Chromium
 * against the engine on random states (smoothing, weights, probability targets, ignore_index).
 *
 * The operations follow the engine's, in the same order, so that the numbers agree to rounding
 * (JavaScript numbers are float64, as the engine's tensors are). The semantics are PyTorch's
 * aten/src/ATen/native/LossNLL.cpp:
 *   nll_loss_out_frame                  class indices: ignore_index, weights, the 'mean' divisor
 *   cross_entropy_loss_label_smoothing  class indices with label_smoothing > 0
 *   cross_entropy_loss_prob_target      class-probability targets
 * No DOM here: this module also runs on its own. */

const zeros = (n) => new Array(n).fill(0);

/** softmax and log_softmax of each row, shifted by the row's max so that exp cannot overflow. */
function softmaxStages(z) {
  const N = z.length;
  const out = {
    max_logit: zeros(N), predicted: zeros(N), shifted: [], exp: [], sum_exp: zeros(N),
    log_sum_exp: zeros(N), softmax: [], log_probs: [],
  };
  for (let i = 0; i < N; i++) {
    const row = z[i];
    // torch.max(dim): the first maximum, or the first NaN (which then is the max)
    let m = row[0];
    let arg = 0;
    for (let c = 1; c < row.length && !Number.isNaN(m); c++) {
      if (row[c] > m || Number.isNaN(row[c])) {
        m = row[c];
        arg = c;
      }
    }
    const shifted = row.map((v) => v - m); // every entry <= 0
    const exp = shifted.map(Math.exp); // in (0, 1]
    let s = 0;
    for (const e of exp) s += e; // >= 1: the max contributes exp(0)
    const logS = Math.log(s);
    out.max_logit[i] = m;
    out.predicted[i] = arg;
    out.shifted.push(shifted);
    out.exp.push(exp);
    out.sum_exp[i] = s;
    // torch.logsumexp is the max itself where the max is +-inf (inf - inf would be NaN)
    out.log_sum_exp[i] = Number.isFinite(m) || Number.isNaN(m) ? m + logS : m;
    out.softmax.push(exp.map((e) => e / s));
    out.log_probs.push(shifted.map((v) => v - logS)); // as PyTorch's log_softmax kernel
  }
  return out;
}

/** 'none': the per-row losses; 'sum': their sum; 'mean': their sum / denominator. */
function reduce(perElement, denominator, reduction) {
  if (reduction === "none") return perElement.slice();
  let total = 0;
  for (const v of perElement) total += v;
  return reduction === "sum" ? total : total / denominator;
}

/** Class indices (nll_loss_out_frame), with label smoothing eps >= 0
 * (cross_entropy_loss_label_smoothing when eps > 0): per row, -sum_c w_c q_c log p_c with
 * q = (1 - eps) one_hot + eps / C, 0 where the target equals ignoreIndex; 'mean' divides by the
 * sum of the counted targets' weights (their number without weights). */
function indexTargets(sm, t, w, ignoreIndex, reduction, eps) {
  const N = t.length;
  const C = sm.log_probs[0].length;
  const counted = t.map((v) => v !== ignoreIndex);
  const idx = t.map((v, i) => (counted[i] ? v : 0)); // ignored rows: class 0, weight 0
  const wt = idx.map((c, i) => (counted[i] ? (w ? w[c] : 1) : 0));
  const oneHot = idx.map((c, i) => {
    const row = zeros(C);
    row[c] = counted[i] ? 1 : 0;
    return row;
  });
  const nll = idx.map((c, i) => (counted[i] ? -sm.log_probs[i][c] * wt[i] : 0));
  let denominator = 0;
  for (const v of wt) denominator += v;
  const scale = reduction === "mean" ? 1 / denominator : 1;
  const dividesByZero = reduction === "mean" && denominator === 0;

  if (eps === 0) {
    const grad = sm.softmax.map((p, i) => {
      const ws = wt[i] * scale; // softmax * ws, less ws at the target
      const row = p.map((v) => v * ws);
      row[idx[i]] += -ws;
      // where 'mean' divides by 0, autograd leaves ignored rows at softmax * 0
      return dividesByZero && !counted[i] ? p.map((v) => v * 0) : row;
    });
    return {
      one_hot: oneHot, target_dist: oneHot, per_element_loss: nll,
      loss: reduce(nll, denominator, reduction), grad, denominator,
    };
  }

  // the loss against the uniform distribution, -sum_c w_c log p_c, 0 where ignored
  const smooth = sm.log_probs.map((lp, i) => {
    let s = 0;
    for (let c = 0; c < C; c++) s += w ? lp[c] * w[c] : lp[c];
    return counted[i] ? -s : 0;
  });
  const perElement = nll.map((v, i) => (1 - eps) * v + (eps / C) * smooth[i]);
  let loss;
  if (reduction === "none") {
    loss = perElement;
  } else {
    // reduced term by term, as PyTorch does: the same number, and the same NaN for 0 / 0
    let nllSum = 0;
    let smoothSum = 0;
    for (let i = 0; i < N; i++) {
      nllSum += nll[i];
      smoothSum += smooth[i];
    }
    if (reduction === "mean") {
      nllSum /= denominator;
      smoothSum /= denominator;
    }
    loss = (1 - eps) * nllSum + (eps / C) * smoothSum;
  }
  let wSum = C;
  if (w) {
    wSum = 0;
    for (const v of w) wSum += v;
  }
  let uniform = (eps / C) * wSum; // eps/C sum_c w_c
  if (!Number.isFinite(uniform) && w) {
    uniform = 0; // the sum overflowed; eps/C * w_c may not
    for (const v of w) uniform += (eps / C) * v;
  }
  const target = -(1 - eps);
  const grad = sm.softmax.map((p, i) => {
    if (dividesByZero) return counted[i] ? p.map(() => NaN) : p.map((v) => v * 0);
    const s = (1 - eps) * wt[i] + uniform * (counted[i] ? 1 : 0); // sum_c w_c q_c
    const row = p.map((v) => v * (s * scale));
    row[idx[i]] += target * wt[i] * scale;
    const smoothing = (counted[i] ? 1 : 0) * ((eps / C) * scale);
    for (let c = 0; c < C; c++) row[c] -= w ? smoothing * w[c] : smoothing;
    return row;
  });
  const targetDist = oneHot.map((row, i) =>
    row.map((v) => v * (1 - eps) + (counted[i] ? 1 : 0) * (eps / C)));
  return { one_hot: oneHot, target_dist: targetDist, per_element_loss: perElement, loss, grad, denominator };
}

/** Class probabilities (cross_entropy_loss_prob_target): per row -sum_c w_c q_c log p_c with
 * q = t, or (1 - eps) t + eps / C; no ignore_index; 'mean' divides by N, whatever the weights. */
function probabilityTargets(sm, t, w, reduction, eps) {
  const N = t.length;
  const C = t[0].length;
  const q = eps === 0 ? t.map((row) => row.slice()) : t.map((row) => row.map((v) => v * (1 - eps) + eps / C));
  const wq = w ? q.map((row) => row.map((v, c) => v * w[c])) : q;
  // PyTorch's order, (log_probs * q) * w: it overflows (or gives 0 * inf) where PyTorch does
  const perElement = sm.log_probs.map((lp, i) => {
    let s = 0;
    for (let c = 0; c < C; c++) s += w ? lp[c] * q[i][c] * w[c] : lp[c] * q[i][c];
    return -s;
  });
  const denominator = N;
  const scale = reduction === "mean" ? 1 / denominator : 1;
  const grad = sm.softmax.map((p, i) => {
    let s = 0; // sum_c w_c q_c
    if (w) {
      for (const v of wq[i]) s += v;
    } else {
      let total = 0;
      for (const v of t[i]) total += v;
      s = (1 - eps) * total + eps;
    }
    return p.map((v, c) => v * (s * scale) - wq[i][c] * scale);
  });
  return {
    one_hot: null, target_dist: q, per_element_loss: perElement,
    loss: reduce(perElement, denominator, reduction), grad, denominator,
  };
}

/** Every stage of F.cross_entropy(logits, target, weight, ignore_index, reduction,
 * label_smoothing), named as POST /loss names them. logits: N rows of C numbers; target: N class
 * indices, or N rows of C probabilities. */
export function crossEntropy(logits, target, options) {
  const o = options || {};
  const reduction = o.reduction || "mean";
  const eps = o.labelSmoothing || 0;
  const ignoreIndex = o.ignoreIndex === undefined ? -100 : o.ignoreIndex;
  const w = o.weight || null;
  const sm = softmaxStages(logits);
  const probabilities = Array.isArray(target[0]);
  const path = probabilities
    ? probabilityTargets(sm, target, w, reduction, eps)
    : indexTargets(sm, target, w, ignoreIndex, reduction, eps);
  return {
    logits: logits.map((row) => row.slice()),
    max_logit: sm.max_logit,
    shifted: sm.shifted,
    exp: sm.exp,
    sum_exp: sm.sum_exp,
    log_sum_exp: sm.log_sum_exp,
    softmax: sm.softmax,
    log_probs: sm.log_probs,
    one_hot: path.one_hot,
    target_dist: path.target_dist,
    per_element_loss: path.per_element_loss,
    loss: path.loss,
    grad: path.grad,
    predicted: sm.predicted,
    denominator: path.denominator,
  };
}

/** The stages compared with the server's, in order. */
export const COMPARED = [
  "logits", "max_logit", "shifted", "exp", "sum_exp", "log_sum_exp", "softmax", "log_probs",
  "one_hot", "target_dist", "per_element_loss", "loss", "grad", "predicted", "denominator",
];

/** Whether two float64 results agree: |a - b| <= 1e-12 max(|a|, |b|) + 1e-15 (1 + zmax), zmax
 * the largest |z| of the row. Near zero two correct float64 computations differ by more than a
 * relative 1e-12, hence the absolute term. null (how JSON writes NaN and inf) equals any
 * non-finite number; infinities equal themselves. */
export function agree(a, b, zmax) {
  const x = a === null ? NaN : a;
  const y = b === null ? NaN : b;
  if (!Number.isFinite(x) || !Number.isFinite(y)) {
    if (a === null || b === null) return !Number.isFinite(x) && !Number.isFinite(y);
    return Object.is(x, y) || (Number.isNaN(x) && Number.isNaN(y));
  }
  return Math.abs(x - y) <= 1e-12 * Math.max(Math.abs(x), Math.abs(y)) + 1e-15 * (1 + zmax);
}

/** The largest |z| of each row (NaN counts as 0: a NaN row agrees only with NaN anyway). */
export function rowScales(logits) {
  return logits.map((row) => row.reduce((m, v) => (Math.abs(v) > m ? Math.abs(v) : m), 0));
}

/** Where the mirror's stages and the server's differ by the rule of `agree`: a list of
 * {stage, index, mine, theirs} (index: [row] or [row, class], [] for a number), empty when every
 * stage agrees. torch_loss, if the server sent it, is held to the mirror's loss. */
export function differences(mine, theirs) {
  const scales = rowScales(mine.logits);
  const overall = scales.reduce((m, v) => Math.max(m, v), 0);
  const out = [];
  const visit = (stage, a, b, index) => {
    if (out.length >= 20) return;
    if (Array.isArray(a) || Array.isArray(b)) {
      if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) {
        out.push({ stage, index, mine: a, theirs: b });
        return;
      }
      a.forEach((v, k) => visit(stage, v, b[k], index.concat([k])));
      return;
    }
    const zmax = index.length ? scales[index[0]] : overall;
    if (a === null && b === null) return;
    if (typeof a !== "number" && a !== null) a = NaN;
    if (!agree(a, b, zmax)) out.push({ stage, index, mine: a, theirs: b });
  };
  for (const stage of COMPARED) {
    if (!(stage in theirs)) continue;
    visit(stage, mine[stage], theirs[stage], []);
  }
  if ("torch_loss" in theirs) visit("torch_loss", mine.loss, theirs.torch_loss, []);
  return out;
}

/** The parts of cross-entropy for one row: H(q, p) = -sum q log p, H(q) = -sum q log q (0 log 0
 * taken as 0) and KL(q || p) = sum q (log q - log p); H(q, p) = H(q) + KL(q || p). */
export function entropyParts(q, logp) {
  let cross = 0;
  let entropy = 0;
  let kl = 0;
  q.forEach((v, c) => {
    if (v === 0) return;
    cross -= v * logp[c];
    entropy -= v * Math.log(v);
    kl += v * (Math.log(v) - logp[c]);
  });
  return { cross, entropy, kl };
}

/** Softmax and the loss of target t, naively (exp, then divide, then log) and by log-sum-exp,
 * in float64 or, with f32, in float32 (every operation rounded to float32 as a float32 tensor's
 * would be: exp overflows above about 88.72 there, above about 709.78 in float64). */
export function stability(z, t, f32) {
  const r = f32 ? Math.fround : (x) => x;
  const zz = z.map(r);
  const e = zz.map((v) => r(Math.exp(v)));
  const total = e.reduce((a, b) => r(a + b), 0);
  const naiveSoftmax = e.map((v) => r(v / total));
  const naiveLoss = r(-Math.log(naiveSoftmax[t]));
  const m = zz.reduce((a, b) => (b > a ? b : a), -Infinity);
  const es = zz.map((v) => r(Math.exp(r(v - m))));
  const s = es.reduce((a, b) => r(a + b), 0);
  const lse = r(m + r(Math.log(s)));
  const softmax = es.map((v) => r(v / s));
  const loss = r(lse - zz[t]);
  return { exp: e, sum: total, naiveSoftmax, naiveLoss, lse, softmax, loss };
}
