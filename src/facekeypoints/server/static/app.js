// The facekeypoints page: a photo or the webcam goes to the JSON API, and the faces it
// returns are drawn on a canvas (points, mesh, boxes). With a filter, the server's
// /v1/render draws the picture instead. Nothing here loads anything from another site.
//
// A server started with an API key answers /v1 with 401 until it is given: the page then
// asks for the key, keeps it in this tab's sessionStorage (gone when the tab closes) and
// sends it as "Authorization: Bearer KEY" with every /v1 request, to this server only.

const $ = (id) => document.getElementById(id);
const view = $("view");
const ctx = view.getContext("2d");
const video = $("video");

// Same colours and sizes as facekeypoints.draw, so a downloaded picture looks like the CLI's.
const COLOURS = { box: "rgb(0, 220, 90)", mesh: "rgb(0, 200, 255)", keypoints: "rgb(255, 60, 60)" };
// Photos are scaled to at most this many pixels on their longer side before they are sent.
const MAX_SIDE = 4096;

let edges = []; // [[i, j], ...] landmark contour segments, from /v1/models
let source = null; // canvas holding the current photo or webcam frame, as sent to the server
let result = null; // {faces: [...] | null, count, serverMs, ms}
let rendered = null; // ImageBitmap from /v1/render when a filter is on
let webcam = null; // {stream} while the webcam runs
let seq = 0; // answers to older requests are dropped

const KEY_STORE = "facekeypoints.apiKey";
let apiKey = readKey(); // "" while the server has asked for none

function readKey() {
  try {
    return sessionStorage.getItem(KEY_STORE) || "";
  } catch {
    return ""; // storage disabled: the key lasts as long as the page
  }
}

function keepKey(key) {
  apiKey = key;
  try {
    if (key) sessionStorage.setItem(KEY_STORE, key);
    else sessionStorage.removeItem(KEY_STORE);
  } catch {
    // storage disabled
  }
}

class KeyNeeded extends Error {}

// fetch() for the API: with the key when there is one; a 401 asks the person for it.
async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    const refused = Boolean(apiKey);
    keepKey("");
    askForKey();
    throw new KeyNeeded(
      refused ? "The API key was refused; enter it again." : "This server needs an API key; enter it above.",
    );
  }
  return response;
}

function askForKey() {
  stopWebcam();
  const form = $("key-form");
  form.hidden = false;
  $("api-key").value = "";
  $("api-key").focus();
}

function setState(state, message) {
  document.body.dataset.state = state;
  if (message !== undefined) $("status").textContent = message;
}

const plural = (n) => (n === 1 ? "1 face" : `${n} faces`);

function drawChoices() {
  return [...document.querySelectorAll('input[name="draw"]:checked')].map((i) => i.value);
}

async function apiError(response) {
  let detail = response.statusText || "request failed";
  try {
    const body = await response.json();
    if (body && body.detail) detail = body.detail;
  } catch {
    // not a JSON error body
  }
  return new Error(`${response.status}: ${detail}`);
}

function toBlob(canvas) {
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("cannot encode the picture"))), "image/jpeg", 0.92),
  );
}

function faceSize(face, diagonal) {
  const [x0, y0, x1, y1] = face.box;
  let size = Math.max(x1 - x0, y1 - y0);
  if (!(size > 0)) {
    const xs = face.keypoints.map((p) => p[0]);
    const ys = face.keypoints.map((p) => p[1]);
    size = Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys), 1);
  }
  return Math.min(Math.max(size, 1), diagonal);
}

function drawFaces(g, faces, what) {
  const diagonal = Math.hypot(view.width, view.height);
  g.save();
  g.translate(0.5, 0.5); // API coordinates have their origin at the centre of the top-left pixel
  g.lineJoin = "round";
  g.lineCap = "round";
  for (const face of faces) {
    const size = faceSize(face, diagonal);
    const thickness = Math.max(1, Math.round(size / 160));
    const radius = Math.max(1, size / 90);
    const kps = face.keypoints;
    g.lineWidth = thickness;
    if (what.has("box")) {
      const [x0, y0, x1, y1] = face.box;
      g.strokeStyle = COLOURS.box;
      g.strokeRect(x0, y0, x1 - x0, y1 - y0);
    }
    if (what.has("mesh")) {
      g.strokeStyle = COLOURS.mesh;
      g.beginPath();
      for (const [i, j] of edges) {
        if (i < kps.length && j < kps.length) {
          g.moveTo(kps[i][0], kps[i][1]);
          g.lineTo(kps[j][0], kps[j][1]);
        }
      }
      g.stroke();
    }
    if (what.has("keypoints")) {
      g.fillStyle = COLOURS.keypoints;
      for (const [x, y] of kps) {
        g.beginPath();
        g.arc(x, y, radius, 0, 2 * Math.PI);
        g.fill();
      }
    }
  }
  g.restore();
}

function paint() {
  const picture = rendered || source;
  if (!picture) return;
  view.width = picture.width;
  view.height = picture.height;
  ctx.drawImage(picture, 0, 0);
  if (!rendered && result && result.faces) drawFaces(ctx, result.faces, new Set(drawChoices()));
  $("drop").classList.remove("empty");
}

function report() {
  $("face-count").textContent = String(result.count);
  $("time-taken").textContent = `${Math.round(result.ms)} ms (server ${Math.round(result.serverMs)} ms)`;
  $("download").disabled = false;
}

// Send the current picture; draw what comes back.
async function analyse() {
  if (!source) return;
  const id = ++seq;
  const filter = $("filter").value;
  setState("busy", "Finding faces…");
  try {
    const body = await toBlob(source);
    const t0 = performance.now();
    const headers = { "Content-Type": "image/jpeg" };
    if (filter) {
      const query = new URLSearchParams({ filter, draw: drawChoices().join(",") || "none" });
      const response = await api(`/v1/render?${query}`, {
        method: "POST",
        body,
        headers: { ...headers, Accept: "image/png" },
      });
      if (!response.ok) throw await apiError(response);
      const bitmap = await createImageBitmap(await response.blob());
      if (id !== seq) return;
      rendered = bitmap;
      result = {
        faces: null,
        count: Number(response.headers.get("X-Faces") || 0),
        serverMs: Number(response.headers.get("X-Time-Ms") || 0),
        ms: performance.now() - t0,
      };
    } else {
      const response = await api("/v1/landmarks", { method: "POST", body, headers });
      if (!response.ok) throw await apiError(response);
      const json = await response.json();
      if (id !== seq) return;
      rendered = null;
      result = { faces: json.faces, count: json.faces.length, serverMs: json.time_ms.total, ms: performance.now() - t0 };
    }
    paint();
    report();
    setState("done", `${plural(result.count)} found${filter ? `, filter ${filter}` : ""}.`);
  } catch (err) {
    if (id === seq) {
      setState(err instanceof KeyNeeded ? "key" : "error", err.message);
      $("face-count").textContent = "–";
    }
  }
}

async function loadPhoto(file) {
  stopWebcam();
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    setState("error", `${file.name || "that file"}: not a picture this browser can read`);
    return;
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  source = canvas;
  rendered = null;
  result = null;
  paint();
  await analyse();
}

// --- webcam: one request in flight; the next frame is grabbed when the answer is drawn ---------

async function startWebcam() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setState("error", "This browser gives no webcam access here (it needs https or localhost).");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 } },
      audio: false,
    });
  } catch (err) {
    setState("error", `Webcam unavailable: ${err.message}`);
    return;
  }
  webcam = { stream };
  video.srcObject = stream;
  await video.play();
  $("webcam").textContent = "Stop webcam";
  $("webcam").setAttribute("aria-pressed", "true");
  const me = webcam;
  while (webcam === me) {
    if (video.videoWidth > 0) {
      const frame = document.createElement("canvas");
      frame.width = video.videoWidth;
      frame.height = video.videoHeight;
      frame.getContext("2d").drawImage(video, 0, 0);
      source = frame;
      await analyse();
    }
    await new Promise((resolve) => requestAnimationFrame(resolve));
    if (document.body.dataset.state === "error") await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function stopWebcam() {
  if (!webcam) return;
  for (const track of webcam.stream.getTracks()) track.stop();
  webcam = null;
  video.srcObject = null;
  $("webcam").textContent = "Start webcam";
  $("webcam").setAttribute("aria-pressed", "false");
}

function download() {
  view.toBlob((blob) => {
    if (!blob) return;
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "facekeypoints.png";
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 30000);
  }, "image/png");
}

async function init() {
  $("photo").addEventListener("change", (e) => {
    const file = e.target.files && e.target.files[0];
    if (file) loadPhoto(file);
  });
  $("webcam").addEventListener("click", () => (webcam ? stopWebcam() : startWebcam()));
  $("filter").addEventListener("change", () => {
    // A filter usually looks best alone, landmarks over it are for checking: start it without them.
    const on = !$("filter").value;
    for (const box of document.querySelectorAll('input[name="draw"]')) box.checked = on;
    if (!webcam) analyse();
  });
  for (const box of document.querySelectorAll('input[name="draw"]')) {
    box.addEventListener("change", () => {
      if ($("filter").value) {
        if (!webcam) analyse();
      } else {
        paint();
      }
    });
  }
  $("download").addEventListener("click", download);
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("dragging");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("dragging");
    const file = e.dataTransfer.files && e.dataTransfer.files[0];
    if (file) loadPhoto(file);
  });

  $("key-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) return;
    keepKey(key);
    $("key-form").hidden = true;
    if (await loadModels()) await analyse();
  });

  await loadModels();
}

// The model, landmark edges and filters, from /v1/models; true once they are loaded.
async function loadModels() {
  setState("loading", "Loading…");
  try {
    const response = await api("/v1/models");
    if (!response.ok) throw await apiError(response);
    const info = await response.json();
    edges = info.landmarks.edges;
    const model = info.models[0];
    $("model-name").textContent = `Model ${model.name} ${model.version}, face detector ${model.detector}.`;
    const select = $("filter");
    select.replaceChildren(select.options[0]);
    for (const name of info.filters) {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      select.append(option);
    }
    select.disabled = info.filters.length === 0;
    if (select.disabled) select.title = "no filters in this installation";
    setState("ready", "Ready.");
    return true;
  } catch (err) {
    if (err instanceof KeyNeeded) setState("key", err.message);
    else setState("error", `Cannot reach the server: ${err.message}`);
    return false;
  }
}

// For tests and the curious: the last answer, as drawn.
window.facekeypointsPage = {
  get result() {
    return result;
  },
};

init();
