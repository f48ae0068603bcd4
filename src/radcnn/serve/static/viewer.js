// radcnn viewer: plain canvas, no framework. The server decodes every format (the same reader the model
// uses), so the page only maps 16-bit display intensities through a window/level and draws the heat map.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { file: null, pixels: null, width: 0, height: 0, heat: null, invert: false, busy: false };

function token() { return sessionStorage.getItem("radcnn-token") || ""; }
function authHeaders() { return token() ? { Authorization: "Bearer " + token() } : {}; }

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function loadModel() {
  const res = await fetch("/v1/model", { headers: authHeaders() });
  if (res.status === 401) {
    $("token-box").hidden = false;
    $("model-name").textContent = "token needed";
    return;
  }
  if (!res.ok) { setStatus("model card: HTTP " + res.status, true); return; }
  const card = await res.json();
  $("model-name").textContent = `${card.model.name} · ${card.model.architecture} · version ${card.model.version}`;
}

function decodeImage(image) {
  const bytes = Uint8Array.from(atob(image.data_base64), (c) => c.charCodeAt(0));
  const view = new DataView(bytes.buffer);
  const pixels = new Uint16Array(image.width * image.height);
  for (let i = 0; i < pixels.length; i++) pixels[i] = view.getUint16(2 * i, true);
  return pixels;
}

function loadHeat(heatmap) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("heat map PNG could not be decoded"));
    img.src = "data:image/png;base64," + heatmap.png_base64;
  });
}

function render() {
  $("ww-out").textContent = $("ww").value + "%";
  $("wl-out").textContent = $("wl").value + "%";
  $("opacity-out").textContent = $("opacity").value + "%";
  if (!state.pixels) return;
  const canvas = $("view");
  canvas.width = state.width;
  canvas.height = state.height;
  const ctx = canvas.getContext("2d");
  const width = Number($("ww").value) / 100, level = Number($("wl").value) / 100;
  const low = level - width / 2;
  const out = ctx.createImageData(state.width, state.height);
  const lut = new Uint8ClampedArray(65536);  // window/level as a lookup table: one pass over the pixels
  for (let v = 0; v < 65536; v++) {
    let g = ((v / 65535 - low) / width) * 255;
    g = g < 0 ? 0 : g > 255 ? 255 : g;
    lut[v] = state.invert ? 255 - g : g;
  }
  for (let i = 0, j = 0; i < state.pixels.length; i++, j += 4) {
    const g = lut[state.pixels[i]];
    out.data[j] = out.data[j + 1] = out.data[j + 2] = g;
    out.data[j + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
  if (state.heat) {
    ctx.globalAlpha = Number($("opacity").value) / 100;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(state.heat, 0, 0, state.width, state.height);  // the model saw the image stretched: so is the map
    ctx.globalAlpha = 1;
  }
}

function showResult(body) {
  const rows = $("rows");
  rows.replaceChildren();
  for (const [label, p] of Object.entries(body.probabilities)) {
    const tr = document.createElement("tr");
    const positive = body.decisions[label];
    const threshold = body.thresholds[label];
    tr.innerHTML = "<td></td><td class='num'></td><td class='num'></td><td></td>";
    tr.children[0].textContent = label;
    tr.children[1].textContent = p.toFixed(4);
    tr.children[2].textContent = threshold === undefined ? "arg max" : threshold.toFixed(4);
    tr.children[3].textContent = positive ? "positive" : "negative";
    tr.children[3].className = positive ? "positive" : "negative";
    tr.dataset.label = label;
    rows.append(tr);
  }
  const warnings = $("warnings");
  warnings.replaceChildren(...body.warnings.map((w) => Object.assign(document.createElement("li"), { textContent: w })));
  $("explained").textContent = body.heatmap ? `heat map: ${body.heatmap.method} for “${body.heatmap.label}”` : "";
  $("explained").dataset.method = body.heatmap ? body.heatmap.method : "";
  $("input-info").textContent =
    `${body.input.format.toUpperCase()} ${body.input.width}×${body.input.height} · model ${body.model.name} ${body.model.version}`;
  $("results").hidden = false;
}

async function predict() {
  if (!state.file || state.busy) return;
  state.busy = true;
  setStatus("predicting…");
  const form = new FormData();
  form.append("file", state.file);
  const query = new URLSearchParams({ heatmap: "1", image: "1", method: $("method").value });
  try {
    const res = await fetch("/v1/predict?" + query, { method: "POST", body: form, headers: authHeaders() });
    const body = await res.json().catch(() => ({ detail: res.statusText }));
    if (!res.ok) {
      if (res.status === 401) $("token-box").hidden = false;
      setStatus(`HTTP ${res.status}: ${typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)}`, true);
      return;
    }
    state.pixels = decodeImage(body.image);
    state.width = body.image.width;
    state.height = body.image.height;
    state.heat = body.heatmap ? await loadHeat(body.heatmap) : null;
    $("canvas-wrap").hidden = false;
    showResult(body);
    render();
    setStatus("done");
    document.body.dataset.ready = "1";  // lets automated checks wait for a finished prediction
  } catch (err) {
    setStatus("request failed: " + err.message, true);
  } finally {
    state.busy = false;
  }
}

function choose(file) {
  if (!file) return;
  state.file = file;
  document.body.dataset.ready = "";
  predict();
}

function setupDragWindowing() {
  const canvas = $("view");
  let start = null;
  canvas.addEventListener("pointerdown", (e) => {
    start = { x: e.clientX, y: e.clientY, ww: Number($("ww").value), wl: Number($("wl").value) };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!start) return;
    $("ww").value = Math.min(100, Math.max(1, start.ww + (e.clientX - start.x) / 4));
    $("wl").value = Math.min(100, Math.max(0, start.wl - (e.clientY - start.y) / 4));
    render();
  });
  const stop = () => { start = null; };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
}

function setup() {
  $("file").addEventListener("change", (e) => choose(e.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); choose(e.dataTransfer.files[0]); });
  for (const id of ["ww", "wl", "opacity"]) $(id).addEventListener("input", render);
  $("method").addEventListener("change", predict);
  $("wl-reset").addEventListener("click", () => { $("ww").value = 100; $("wl").value = 50; render(); });
  $("wl-invert").addEventListener("click", (e) => {
    state.invert = !state.invert;
    e.target.setAttribute("aria-pressed", String(state.invert));
    render();
  });
  $("token").addEventListener("change", (e) => {
    sessionStorage.setItem("radcnn-token", e.target.value.trim());
    loadModel();
    predict();
  });
  setupDragWindowing();
  render();
  loadModel();
}

setup();
