/* "Use your weights": a .pth (the tutorial's torch.save(net.state_dict(), PATH)) kept in this
 * browser's IndexedDB, so that /upload, /model and /train share it, and sent as the `weights` part
 * of a request. The server keeps nothing: the file travels with every request that uses it.
 * The picker is templates/_weights.html; a page calls mountWeights(onChange) once. */
import { s, postForm } from "./common.js";

// IndexedDB, not sessionStorage: it keeps a Blob as it is (no base64, no 5 MB string quota) and
// outlives the tab, so a file chosen on /upload is there on /model. One record, under one key.
const DB = "cross-entropy-explainer";
const STORE = "weights";
const KEY = "current";

function open() {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function transact(mode, work) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    const req = work(t.objectStore(STORE));
    t.oncomplete = () => {
      db.close();
      resolve(req.result);
    };
    t.onerror = t.onabort = () => {
      db.close();
      reject(t.error);
    };
  });
}

/** Storage that fails (a private window, storage off) leaves the file in this page only. */
async function stored(mode, work) {
  try {
    return await transact(mode, work);
  } catch (e) {
    return undefined;
  }
}

function kb(bytes) {
  return (bytes / 1024).toLocaleString("en-US", { maximumFractionDigits: 1 }) + " KB";
}

/** The server's refusal in the page's language: a message by its code where there is one, then
 * the server's own detail (English) as it was sent. */
const REFUSED = {
  weights_too_large: s("refused_weights_too_large"),
  weights_unsafe: s("refused_weights_unsafe"),
  weights_whole_model: s("refused_weights_whole_model"),
  weights_not_state_dict: s("refused_weights_not_state_dict"),
  weights_keys: s("refused_weights_keys"),
  weights_shape: s("refused_weights_shape"),
  weights_dtype: s("refused_weights_dtype"),
  weights_not_finite: s("refused_weights_not_finite"),
  weights_unreadable: s("refused_weights_unreadable"),
};
function refusal(e) {
  return (Object.hasOwn(REFUSED, e.code || "") ? REFUSED[e.code] : s("weights_refused")) + " " + e.detail;
}

/** An error about the `weights` part: its detail starts "weights (<file name>): ". */
function aboutWeights(e) {
  return (e.status === 413 || e.status === 422) && (String(e.code || "").startsWith("weights_") || /^weights \(/.test(e.detail || ""));
}

/** Mount the picker; onChange(chosen) runs once the stored file is read and after every change. */
export function mountWeights(onChange) {
  const root = document.getElementById("weights-picker");
  const input = document.getElementById("weights-input");
  const forget = document.getElementById("weights-forget");
  const facts = document.getElementById("weights-facts");
  const error = document.getElementById("weights-error");
  const max = Number(root.dataset.maxBytes);
  const field = (name) => root.querySelector('[data-weights="' + name + '"]');
  /** {blob, name, size, sha256 (null until the server answered)} or null */
  let file = null;

  function show(message) {
    error.textContent = message || "";
    error.hidden = !message;
  }
  function draw() {
    facts.hidden = !file;
    forget.hidden = !file;
    root.dataset.state = file ? (file.sha256 ? "confirmed" : "chosen") : "none";
    if (!file) return;
    field("name").textContent = file.name;
    field("size").textContent = kb(file.size);
    field("sha256").textContent = file.sha256 || s("weights_pending");
  }
  async function set(next) {
    file = next;
    draw();
    await stored("readwrite", (st) => (next ? st.put(next, KEY) : st.delete(KEY)));
    onChange(Boolean(file));
  }

  input.addEventListener("change", () => {
    const picked = input.files && input.files[0];
    input.value = "";
    if (!picked) return;
    if (picked.size > max) {
      show(REFUSED.weights_too_large + " " + s("weights_cap", { size: kb(picked.size), max: kb(max) }));
      return;
    }
    show("");
    set({ blob: picked.slice(0, picked.size, picked.type), name: picked.name, size: picked.size, sha256: null });
  });
  forget.addEventListener("click", () => {
    show("");
    set(null);
  });

  stored("readonly", (st) => st.get(KEY)).then((kept) => {
    file = kept || null;
    draw();
    onChange(Boolean(file));
  });

  return {
    chosen: () => Boolean(file),
    /** POST a copy of `form` with the file as its `weights` part: the answer, or null when no file
     * is chosen or the server refused the request (its error then shows beside the picker; a
     * refused file is forgotten). An abort still throws. */
    async post(url, form, signal) {
      if (!file) return null;
      const mine = file;
      const copy = new FormData();
      for (const [name, value] of form.entries()) copy.append(name, value);
      copy.append("weights", mine.blob, mine.name);
      try {
        const answer = await postForm(url, copy, signal);
        show("");
        if (file === mine && answer.weights_sha256 && mine.sha256 !== answer.weights_sha256) {
          mine.sha256 = answer.weights_sha256;
          draw();
          stored("readwrite", (st) => st.put(mine, KEY));
        }
        return answer;
      } catch (e) {
        if (e.name === "AbortError") throw e;
        if (aboutWeights(e)) {
          show(refusal(e));
          if (file === mine) set(null);
        } else {
          show(e.message);
        }
        return null;
      }
    },
  };
}
