// Grace's pages: Play buttons, decision forms and the upload, all as fetches to /api/v1 that
// carry the CSRF token from <meta name="csrf-token"> (the CSP forbids inline scripts).
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

async function post(url, body) {
  const headers = { "X-CSRF-Token": csrf() };
  if (!(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(body);
  }
  const response = await fetch(url, { method: "POST", headers, body, credentials: "same-origin" });
  let data = {};
  try { data = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) throw new Error(data.detail || `${response.status} ${response.statusText}`);
  return data;
}

function show(output, text, ok) {
  if (!output) return;
  output.textContent = text;
  output.className = ok ? "result ok" : "result error";
}

// Play: the cited moment (with a second of context) as WAV, decoded in memory by the server
function play(button) {
  const audio = button.parentElement.querySelector("audio.clip");
  const params = new URLSearchParams({ citation: button.dataset.citation });
  if (button.dataset.source) params.set("source", button.dataset.source);
  if (button.dataset.context) params.set("context", button.dataset.context);
  const src = `/api/v1/clip?${params}`;
  audio.hidden = false;
  if (audio.dataset.src !== src) {
    audio.dataset.src = src;
    audio.dataset.ready = "";
    audio.addEventListener("canplaythrough", () => { audio.dataset.ready = "1"; }, { once: true });
    audio.addEventListener("error", () => { audio.dataset.ready = "error"; }, { once: true });
    audio.src = src;
  }
  audio.play().catch(() => { /* no sound device: the element still loads */ });
}

// A decision form: its fields as JSON to data-api (wait/true as a boolean, empty fields left out)
async function submitApi(form) {
  const body = {};
  for (const [key, value] of new FormData(form)) {
    if (value === "") continue;
    body[key] = value === "true" ? true : value;
  }
  const output = form.parentElement.querySelector("output.result");
  for (const b of form.parentElement.querySelectorAll("button")) b.disabled = true;
  show(output, "working…", true);
  try {
    const data = await post(form.dataset.api, body);
    show(output, data.source ? `${data.source.title}: ${data.source.state}` : "done", true);
    if (form.hasAttribute("data-reload")) setTimeout(() => window.location.reload(), 600);
  } catch (err) {
    show(output, err.message, false);
    for (const b of form.parentElement.querySelectorAll("button")) b.disabled = false;
  }
}

// The upload: the file plus a consent sidecar built from the participants and checkboxes
let dropped = null;

async function submitUpload(form) {
  const output = form.querySelector("output.result");
  const file = dropped || form.elements.file.files[0];
  if (!file) { show(output, "choose or drop a file first", false); return; }
  const participants = form.elements.participants.value.split(",").map((p) => p.trim()).filter(Boolean);
  const scopes = [];
  if (form.elements.consent_transcribe.checked) scopes.push("transcribe");
  if (form.elements.consent_index.checked) scopes.push("index");
  const data = new FormData();
  data.append("file", file, file.name);
  if (participants.length) {
    const grants = scopes.length ? participants.map((party) => ({ party, scopes })) : [];
    data.append("consent", new Blob([JSON.stringify({ participants, grants })], { type: "application/json" }), "consent.json");
  }
  data.append("origin", form.elements.origin.value);
  if (form.elements.wait.checked) data.append("wait", "true");
  show(output, `uploading ${file.name}…`, true);
  try {
    const result = await post("/api/v1/ingest", data);
    const s = result.sources[0];
    show(output, `${s.path}: ${s.state} (${s.why})`, true);
    dropped = null;
    setTimeout(() => window.location.reload(), 1500);
  } catch (err) {
    show(output, err.message, false);
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.play");
  if (button) play(button);
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.matches("form.api")) { event.preventDefault(); submitApi(form); }
  if (form.id === "upload") { event.preventDefault(); submitUpload(form); }
});

document.addEventListener("DOMContentLoaded", () => {
  const zone = document.getElementById("upload");
  if (!zone) return;
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) {
      dropped = e.dataTransfer.files[0];
      show(zone.querySelector("output.result"), `ready: ${dropped.name} (press Upload)`, true);
    }
  });
});
