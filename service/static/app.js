// carmask page: uploads each photo once for its probabilities (format=probabilities), then thresholds,
// overlays, cuts out and encodes in the browser, so the slider re-renders without re-uploading.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const state = { items: [], threshold: 0.5, model: null, cars: null, models: [] }; // cars null: the model's choice
// Cutout options as POST /segment takes them; with any set, the cutout is the service's (format=cutout).
const CUTOUT_DEFAULTS = { windows: "opaque", shadow: "none", bg_color: "", crop: "false", decontaminate: "false" };

const PLAIN = {
  upload_too_large: "This photo is too large to upload.",
  image_too_large: "This photo has too many pixels.",
  unsupported_image: "This file is not a photo the service can read (JPEG, PNG, WebP, BMP, AVIF or HEIC).",
  corrupt_image: "This photo is damaged and cannot be read.",
  empty_file: "This file is empty.",
  not_ready: "The service is still starting; try again in a moment.",
};

function plainWords(status, body) {
  const text = (body && PLAIN[body.error]) || `The service answered ${status}.`;
  return body && body.detail ? `${text} (${body.detail})` : text;
}

function query(extra) {
  const params = new URLSearchParams(extra);
  if (state.model) params.set("model", state.model);
  if (state.cars) params.set("cars", state.cars);
  return params.toString();
}

async function loadModelInfo() {
  try {
    const ready = await (await fetch("ready")).json();
    $("#model-info").textContent = ready.model ? `model ${ready.model} ${ready.version} on ${ready.provider}` : "model not loaded yet";
    const manifest = await (await fetch("model")).json();
    if (typeof manifest.threshold === "number") setThreshold(manifest.threshold);
  } catch (err) {
    $("#model-info").textContent = "service not reachable";
  }
  const models = await fetch("models").then((r) => (r.ok ? r.json() : null)).catch(() => null);
  // Photo models only: a multi-band model (clouds) takes satellite patches, which this page does not send.
  const all = models && (models.models || models);
  const list = Array.isArray(all) ? all.filter((m) => !m.task || m.task === "binary-segmentation") : null;
  state.models = list || [];
  updateGlass();
  if (Array.isArray(list) && list.length > 1) {
    const select = $("#model");
    for (const m of list) select.add(new Option(`${m.name} ${m.version || ""}`, m.name, m.default, m.default));
    state.model = select.value;
    select.addEventListener("change", () => { state.model = select.value; updateGlass(); reprocessAll(); });
    $("#model-row").hidden = false;
  }
}

function currentModel() {
  return state.models.find((m) => (state.model ? m.name === state.model : m.default)) || null;
}

function updateGlass() { // see-through or tinted windows need a model that marks glass
  const glass = Boolean(currentModel() && currentModel().windows);
  $("#windows").disabled = !glass;
  $("#windows-note").hidden = glass;
  if (!glass) $("#windows").value = "opaque";
}

function cutoutOptions() { // only what differs from the defaults; {} means today's plain cutout
  const chosen = {
    windows: $("#windows").value,
    shadow: $("#shadow").checked ? "contact" : "none",
    bg_color: $("#use-bg").checked ? $("#bg-color").value.slice(1) : "",
    crop: String($("#crop").checked),
    decontaminate: String($("#decontaminate").checked),
  };
  return Object.fromEntries(Object.entries(chosen).filter(([k, v]) => v !== CUTOUT_DEFAULTS[k]));
}

async function serverCutout(item) { // the service's cutout with the chosen options, drawn into the card
  const options = cutoutOptions();
  const key = JSON.stringify([options, state.threshold, state.model, state.cars]);
  if (item.cutoutKey === key) return;
  item.cutoutKey = key;
  const form = new FormData();
  form.append("file", item.file, item.file.name);
  const params = query({ format: "cutout", threshold: state.threshold, ...options });
  const response = await fetch(`segment?${params}`, { method: "POST", body: form });
  if (item.cutoutKey !== key) return; // a newer request has been sent
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    item.cutoutBlob = null;
    return setStatus(plainWords(response.status, body));
  }
  item.cutoutBlob = await response.blob();
  const bitmap = await createImageBitmap(item.cutoutBlob);
  const canvas = $(".cutout", item.card);
  canvas.width = bitmap.width; canvas.height = bitmap.height;
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  item.card.dataset.cutout = "service";
}

function laterCutout(item) { // the slider and the colour picker fire often: ask once they settle
  clearTimeout(item.cutoutTimer);
  item.cutoutTimer = setTimeout(() => serverCutout(item), 200);
}

function rerenderAll() { state.items.filter((item) => item.prob || item.error).forEach(render); }

function setThreshold(value) {
  state.threshold = value;
  $("#threshold").value = String(value);
  $("#threshold-value").textContent = value.toFixed(2);
}

function decodePng(blob) {
  return createImageBitmap(blob).then((bitmap) => {
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0);
    const rgba = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    const grey = new Uint8Array(bitmap.width * bitmap.height);
    for (let i = 0; i < grey.length; i++) grey[i] = rgba[i * 4];
    return { grey, width: bitmap.width, height: bitmap.height };
  });
}

async function process(item) {
  item.error = null;
  const form = new FormData();
  form.append("file", item.file, item.file.name);
  const started = performance.now();
  try {
    const response = await fetch(`segment?${query({ format: "probabilities" })}`, { method: "POST", body: form });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      throw new Error(plainWords(response.status, body));
    }
    item.prob = await decodePng(await response.blob());
    item.ms = performance.now() - started;
    item.photo = await createImageBitmap(item.file, { imageOrientation: "from-image" });
  } catch (err) {
    item.error = err.message || String(err);
  }
  render(item);
}

function maskOf(item) {
  const limit = state.threshold * 255; // the service's rule: car where probability > threshold
  const { grey } = item.prob;
  const mask = new Uint8Array(grey.length);
  let count = 0;
  for (let i = 0; i < grey.length; i++) if (grey[i] > limit) { mask[i] = 1; count++; }
  return { mask, coverage: count / grey.length };
}

function photoPixels(item) {
  const { width, height } = item.prob;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(item.photo, 0, 0, width, height);
  return ctx.getImageData(0, 0, width, height);
}

function render(item) {
  const card = item.card;
  $(".error", card).hidden = !item.error;
  $(".error", card).textContent = item.error || "";
  $(".views", card).hidden = $(".downloads", card).hidden = Boolean(item.error);
  if (item.error) { $(".facts", card).textContent = ""; return; }
  const { width, height } = item.prob;
  const { mask, coverage } = maskOf(item);
  const pixels = photoPixels(item);
  const overlay = new ImageData(new Uint8ClampedArray(pixels.data), width, height);
  const cut = new ImageData(new Uint8ClampedArray(pixels.data), width, height);
  for (let i = 0; i < mask.length; i++) {
    const o = i * 4;
    if (mask[i]) { // tint the car
      overlay.data[o] = overlay.data[o] * 0.55 + 255 * 0.45;
      overlay.data[o + 1] *= 0.55;
      overlay.data[o + 2] = overlay.data[o + 2] * 0.55 + 80 * 0.45;
    } else {
      cut.data[o + 3] = 0;
    }
  }
  const plain = Object.keys(cutoutOptions()).length === 0;
  for (const [selector, image] of plain ? [[".overlay", overlay], [".cutout", cut]] : [[".overlay", overlay]]) {
    const canvas = $(selector, card);
    canvas.width = width; canvas.height = height;
    canvas.getContext("2d").putImageData(image, 0, 0);
  }
  if (plain) {
    item.cutoutKey = item.cutoutBlob = null;
    card.dataset.cutout = "page";
  } else {
    laterCutout(item);
  }
  card.dataset.coverage = coverage.toFixed(6);
  $(".facts", card).textContent =
    `${width}×${height} · car covers ${(coverage * 100).toFixed(1)} % · ${Math.round(item.ms)} ms`;
}

function rle(mask) { // Kaggle Carvana RLE: row-major, 1-indexed "start length" pairs, as the API's format=rle
  const runs = [];
  let start = -1;
  for (let i = 0; i <= mask.length; i++) {
    const on = i < mask.length && mask[i] === 1;
    if (on && start < 0) start = i;
    if (!on && start >= 0) { runs.push(start + 1, i - start); start = -1; }
  }
  return runs.join(" ");
}

function save(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

async function download(item, kind) {
  const stem = item.file.name.replace(/\.[^.]*$/, "") || "photo";
  const { width, height } = item.prob;
  const { mask, coverage } = maskOf(item);
  if (kind === "rle") {
    const record = { name: item.file.name, width, height, rle: rle(mask), coverage, threshold: state.threshold };
    return save(new Blob([JSON.stringify(record)], { type: "application/json" }), `${stem}_mask.json`);
  }
  if (kind === "cutout" && item.cutoutBlob) return save(item.cutoutBlob, `${stem}_cutout.png`);
  const canvas = new OffscreenCanvas(width, height);
  if (kind === "mask") {
    const image = new ImageData(width, height);
    for (let i = 0; i < mask.length; i++) {
      const v = mask[i] ? 255 : 0;
      image.data.set([v, v, v, 255], i * 4);
    }
    canvas.getContext("2d").putImageData(image, 0, 0);
  } else {
    canvas.getContext("2d").drawImage($(".cutout", item.card), 0, 0);
  }
  save(await canvas.convertToBlob({ type: "image/png" }), `${stem}_${kind}.png`);
}

async function downloadZip() {
  const form = new FormData();
  for (const item of state.items) form.append("files", item.file, item.file.name);
  setStatus("Preparing the zip…");
  const response = await fetch(`segment/batch?${query({ format: "zip", threshold: state.threshold })}`, {
    method: "POST", body: form,
  });
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    return setStatus(plainWords(response.status, body));
  }
  save(await response.blob(), "masks.zip");
  setStatus(`Zip of ${state.items.length} photo(s) downloaded.`);
}

function setStatus(text) { $("#status").textContent = text; }

function addFiles(files) {
  for (const file of files) {
    const card = $("#card").content.firstElementChild.cloneNode(true);
    const item = { file, card, prob: null, photo: null, ms: 0, error: null };
    $(".name", card).textContent = file.name;
    card.querySelectorAll("[data-download]").forEach((button) =>
      button.addEventListener("click", () => download(item, button.dataset.download)));
    $("#results").append(card);
    state.items.push(item);
  }
  $("#zip").disabled = $("#clear").disabled = state.items.length === 0;
  setStatus(`Segmenting ${files.length} photo(s)…`);
  reprocessAll().then(() => setStatus(`${state.items.length} photo(s) shown.`));
}

async function reprocessAll() {
  const stale = (item) => !item.prob || item.model !== state.model || item.cars !== state.cars;
  const pending = state.items.filter(stale);
  for (const item of pending) { item.model = state.model; item.cars = state.cars; await process(item); } // one at a time
}

function wire() {
  const input = $("#files");
  input.addEventListener("change", () => { addFiles([...input.files]); input.value = ""; });
  const drop = $("#drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); addFiles([...e.dataTransfer.files]); });
  $("#threshold").addEventListener("input", (e) => {
    setThreshold(Number(e.target.value));
    rerenderAll();
  });
  for (const id of ["windows", "shadow", "crop", "decontaminate", "use-bg", "bg-color"]) {
    $(`#${id}`).addEventListener(id === "bg-color" ? "input" : "change", rerenderAll);
  }
  $("#every-car").addEventListener("change", (e) => {
    state.cars = e.target.checked ? "all" : null;
    setStatus("Segmenting again…");
    reprocessAll().then(() => setStatus(`${state.items.length} photo(s) shown.`));
  });
  $("#zip").addEventListener("click", downloadZip);
  $("#clear").addEventListener("click", () => {
    state.items = [];
    $("#results").replaceChildren();
    $("#zip").disabled = $("#clear").disabled = true;
    setStatus("");
  });
}

wire();
loadModelInfo();
