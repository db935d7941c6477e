// Drives the facekeypoints page in headless Debian chromium with playwright-core.
//
//   node page_check.mjs '{"url": "http://127.0.0.1:PORT/", "photos": [{"path": "...", "faces": 1}], "out": "DIR"}'
//
// For each photo: uploads it through the page's file input, waits for the answer, and
// reads what the page reports (face count, time) and what it drew (canvas pixels at each
// face's box edge and landmarks). Then it downloads the result, tries a filter and the
// (fake) webcam. Prints one JSON document on stdout; the pytest side judges it.

import { readFileSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const config = JSON.parse(process.argv[2]);
const executablePath = config.chromium || "/usr/bin/chromium";
const TIMEOUT = 60_000;

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
  ],
});

const report = { photos: [], consoleErrors: [], download: null, filter: null, webcam: null };

// Reads the canvas where the page's last answer says the faces are.
function inspectCanvas() {
  const canvas = document.getElementById("view");
  const g = canvas.getContext("2d");
  const { data, width, height } = g.getImageData(0, 0, canvas.width, canvas.height);
  const pixel = (x, y) => {
    const i = (Math.min(height - 1, Math.max(0, Math.round(y))) * width + Math.min(width - 1, Math.max(0, Math.round(x)))) * 4;
    return [data[i], data[i + 1], data[i + 2]];
  };
  const near = (p, c, tol = 60) => Math.abs(p[0] - c[0]) + Math.abs(p[1] - c[1]) + Math.abs(p[2] - c[2]) <= tol;
  const POINT = [255, 60, 60];
  // The box colour (0, 220, 90) is far greener than red or blue; a 1-pixel antialiased line
  // blends with the photo, so look for that green excess in a 3x3 neighbourhood.
  const greenish = (x, y) => {
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const [r, g, b] = pixel(x + dx, y + dy);
        if (g - Math.max(r, b) > 40) return true;
      }
    }
    return false;
  };
  const result = window.facekeypointsPage.result;
  const faces = (result && result.faces) || [];
  let hash = 0;
  for (let i = 0; i < data.length; i += 997) hash = (hash * 31 + data[i]) >>> 0;
  return {
    width,
    height,
    hash,
    faces: faces.map((f) => {
      const [x0, y0, x1, y1] = f.box.map((v) => v + 0.5);
      let onBox = 0;
      const samples = 40;
      for (let k = 0; k < samples; k++) {
        const t = (k + 0.5) / samples;
        const x = x0 + t * (x1 - x0);
        if (greenish(x, y0) && greenish(x, y1)) onBox++;
      }
      const onPoints = f.keypoints.filter(([x, y]) => near(pixel(x + 0.5, y + 0.5), POINT)).length;
      return { box: f.box, boxEdgeFraction: onBox / samples, pointFraction: onPoints / f.keypoints.length };
    }),
  };
}

// Waits for the page to finish (or fail) and reads what it reports, in one step inside the
// page, so a webcam loop that starts its next request cannot change it in between.
async function waitForAnswer(page) {
  const handle = await page.waitForFunction(
    () => {
      const state = document.body.dataset.state;
      if (state !== "done" && state !== "error") return null;
      const text = (id) => document.getElementById(id).textContent.trim();
      return { state, faceCount: text("face-count"), time: text("time-taken"), status: text("status") };
    },
    null,
    { timeout: TIMEOUT, polling: "raf" },
  );
  return handle.jsonValue();
}

const markWaiting = (page) => page.evaluate(() => (document.body.dataset.state = "test-waiting"));

try {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  page.on("console", (msg) => {
    if (msg.type() === "error") report.consoleErrors.push(msg.text());
  });
  page.on("pageerror", (err) => report.consoleErrors.push(String(err)));
  page.on("requestfailed", (req) => report.consoleErrors.push(`request failed: ${req.url()}`));
  const outside = [];
  page.on("request", (req) => {
    if (!req.url().startsWith(config.url) && !req.url().startsWith("data:") && !req.url().startsWith("blob:")) {
      outside.push(req.url());
    }
  });

  await page.goto(config.url, { timeout: TIMEOUT });
  await page.waitForSelector('body[data-state="ready"]', { timeout: TIMEOUT });
  report.filters = await page.$$eval("#filter option", (opts) => opts.map((o) => o.value).filter(Boolean));

  for (const photo of config.photos) {
    await markWaiting(page);
    await page.setInputFiles("#photo", photo.path);
    const answer = await waitForAnswer(page);
    const canvas = await page.evaluate(inspectCanvas);
    report.photos.push({ path: photo.path, expected: photo.faces, ...answer, canvas });
    await page.screenshot({ path: path.join(config.out, `page-${report.photos.length}.png`), fullPage: true });
  }

  // Download what is on the canvas (the last photo, drawn).
  const [download] = await Promise.all([page.waitForEvent("download", { timeout: TIMEOUT }), page.click("#download")]);
  const saved = path.join(config.out, download.suggestedFilename());
  await download.saveAs(saved);
  const bytes = readFileSync(saved);
  report.download = {
    name: download.suggestedFilename(),
    png: bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
    width: bytes.readUInt32BE(16),
    height: bytes.readUInt32BE(20),
  };

  // A filter on the photo with the most faces: the server renders it; the count stays, the pixels change.
  if (report.filters.length > 0) {
    const name = report.filters.includes("sunglasses") ? "sunglasses" : report.filters[0];
    const photo = config.photos.reduce((a, b) => (b.faces > a.faces ? b : a));
    await markWaiting(page);
    await page.setInputFiles("#photo", photo.path);
    await waitForAnswer(page);
    const before = (await page.evaluate(inspectCanvas)).hash;
    await markWaiting(page);
    await page.selectOption("#filter", name);
    const answer = await waitForAnswer(page);
    const after = await page.evaluate(inspectCanvas);
    report.filter = {
      name,
      expected: photo.faces,
      ...answer,
      changed: after.hash !== before,
      width: after.width,
      height: after.height,
    };
    await page.screenshot({ path: path.join(config.out, "page-filter.png"), fullPage: true });
    await markWaiting(page);
    await page.selectOption("#filter", "");
    await waitForAnswer(page);
  }

  // The webcam: chromium's fake camera (a test pattern, no face) streams frames to the API.
  await markWaiting(page);
  await page.click("#webcam");
  const cam = await waitForAnswer(page);
  const pressed = await page.getAttribute("#webcam", "aria-pressed");
  await page.click("#webcam");
  report.webcam = { ...cam, pressed };

  report.outsideRequests = outside;
  await context.close();
} catch (err) {
  report.fatal = String(err && err.stack ? err.stack : err);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
