// The page's main thread: the controls, the characters check, the drawing animation and the
// downloads. The network runs in worker.js; this file never waits on it.
//
// A link may carry the controls: ?text=Hello%20world&bias=1&style=NAME&seed=3&speed=6 fills
// them and writes the text as soon as the model is loaded.
//
// window.zooPage is what tests and bench/web_speed.py read: the page's state ("loading", "ready",
// "writing", "drawing", "done", "error"), the last written lines and pen offsets, timings (ms
// since the page was opened), how many times each line was written, and useNoise(), a test-only
// hook that makes the next write use the given noise (numpy's) instead of the seeded generator's,
// for the parity test.

import { Alphabet, layout, pageLines } from "./writing.js";

// Drawing speeds in pen points per second; the last draws the whole page at once.
const SPEEDS = [50, 100, 200, 400, 800, 1600, Infinity];
const MARGIN = 10; // as zoo.render.svg.save_svg
const SVG_NS = "http://www.w3.org/2000/svg";
const OFFSETS_ID = "zoo-offsets"; // zoo.render.svg: `zoo read` reads the pen offsets back from here
const OFFSETS_FORMAT = "zoo-offsets/1";

const $ = (id) => document.getElementById(id);
const controls = {
  text: $("text"),
  bias: $("bias"),
  style: $("style"),
  strokeWidth: $("stroke-width"),
  colour: $("colour"),
  speed: $("speed"),
  seed: $("seed"),
  substitute: $("substitute"),
  write: $("write"),
  downloadSvg: $("download-svg"),
  downloadPng: $("download-png"),
};
const drawing = $("drawing");

const page = {
  state: "loading",
  error: null,
  lines: null, // the lines of the last write, wrapped as `zoo write` wraps them
  offsets: null, // their raw pen offsets: one [[dx, dy, eos], ...] per line
  steps: null, // points the sampling loop ran
  timings: { ready: null, firstStroke: null, done: null, loopMs: null, primeMs: null, loadMs: null },
  testNoise: null,
  attempts: null, // how many times each line was written (a line that looped on one letter is written again)
  /**
   * Test-only: the next write's first try samples with this noise ((steps, count, 4) float32, flat)
   * instead of the seeded generator's; `maxDwell` overrides the longest dwell a line may have.
   */
  useNoise(values, steps, count, maxDwell = null) {
    page.testNoise = { data: Float32Array.from(values), steps, count, maxDwell };
  },
};
window.zooPage = page;

let config = null;
let alphabet = null;
let worker = null;
let writeId = 0;
let modelReady = false;
let animation = null; // the drawing in progress: {frame}

function setState(state, message) {
  page.state = state;
  document.body.dataset.state = state;
  if (message !== undefined) $("status").textContent = message;
}

function fail(message) {
  page.error = message;
  setState("error", message);
  updateButtons();
}

// ---------------------------------------------------------------- start-up

async function start() {
  try {
    const response = await fetch("preset.json");
    if (!response.ok) throw new Error(`preset.json: HTTP ${response.status}`);
    config = await response.json();
  } catch (error) {
    return fail(`Cannot read the preset (${error.message}); is \`python -m zoo serve\` running?`);
  }
  alphabet = new Alphabet(config.alphabet);
  $("model-name").textContent = `${config.name}, ${config.num_layers} x ${config.units} LSTM`;
  $("wrap-width").textContent = config.wrap_width;
  for (const style of config.styles) {
    const option = document.createElement("option");
    option.value = style.name;
    option.textContent = `${style.name} — “${style.text}”`;
    controls.style.append(option);
  }
  controls.bias.value = config.bias;
  controls.seed.value = config.seed;
  controls.style.value = config.default_style || ""; // the preset's default style, as zoo write uses it
  applyQuery();
  showBias();
  showSpeed();
  checkCharacters();

  worker = new Worker(new URL("worker.js", import.meta.url), { type: "module" });
  worker.onmessage = onWorkerMessage;
  worker.onerror = (event) => fail(`The model's worker failed: ${event.message || "see the browser console"}`);
  worker.postMessage({ type: "load", config, base: location.href });
}

/** ?text=...&bias=...&style=...&seed=...&speed=... fill the controls; ?text writes at once. */
function applyQuery() {
  const query = new URLSearchParams(location.search);
  if (query.has("text")) controls.text.value = query.get("text");
  if (query.has("bias")) controls.bias.value = query.get("bias");
  if (query.has("style")) controls.style.value = query.get("style");
  if (query.has("seed")) controls.seed.value = query.get("seed");
  if (query.has("speed")) controls.speed.value = query.get("speed");
}

function onWorkerMessage(event) {
  const message = event.data;
  if (message.type === "ready") {
    page.timings.ready = performance.now();
    page.timings.loadMs = message.loadMs;
    modelReady = true;
    setState("ready", "Ready: type some text and press Write.");
    updateButtons();
    if (new URLSearchParams(location.search).has("text") && !controls.write.disabled) write();
  } else if (message.type === "written") {
    if (message.id !== writeId) return; // a newer write replaced this one
    page.offsets = message.offsets.map((line) => Array.from({ length: line.length / 3 }, (_, i) => [line[3 * i], line[3 * i + 1], line[3 * i + 2]]));
    page.steps = message.steps;
    page.attempts = message.attempts;
    page.timings.loopMs = message.timings.loopMs;
    page.timings.primeMs = message.timings.primeMs ?? null;
    const points = page.offsets.reduce((n, line) => n + line.length, 0);
    const prime = message.timings.primeMs ? `, the style read in ${message.timings.primeMs.toFixed(0)} ms` : "";
    const again = message.attempts.filter((n) => n > 1).length;
    const rewritten = again ? ` ${again} line${again > 1 ? "s" : ""} looped on a letter and ${again > 1 ? "were" : "was"} written again.` : "";
    setState("drawing", `${page.lines.length} line${page.lines.length > 1 ? "s" : ""}, ${points} pen points, sampled in ${message.timings.loopMs.toFixed(0)} ms (${(message.timings.loopMs / message.steps).toFixed(3)} ms per step${prime}).${rewritten}`);
    draw(page.offsets);
  } else if (message.type === "error") {
    if (message.id === undefined || message.id === writeId) fail(`Error: ${message.message}`);
  }
}

// ---------------------------------------------------------------- the controls

function showBias() {
  $("bias-value").textContent = Number(controls.bias.value).toFixed(2);
}

function showSpeed() {
  const speed = SPEEDS[Number(controls.speed.value)];
  $("speed-value").textContent = Number.isFinite(speed) ? `${speed} points/s` : "instant";
}

/** The characters of the text the model cannot write, shown before any sampling, with the offer to substitute them. */
function checkCharacters() {
  if (!alphabet) return;
  const unknown = alphabet.unknown(pageLines(controls.text.value, config.wrap_width).join(""));
  const box = $("unknown");
  box.hidden = unknown.length === 0;
  box.classList.toggle("substituted", controls.substitute.checked);
  if (unknown.length) {
    const shown = unknown.map((c) => `“${c}”`).join(" ");
    $("unknown-message").textContent = controls.substitute.checked
      ? `The model cannot write ${shown}: they will be written as their other case, or as a space.`
      : `The model cannot write ${shown}. It knows only: ${config.alphabet}`;
  }
  updateButtons();
}

function updateButtons() {
  const lines = config ? pageLines(controls.text.value, config.wrap_width) : [];
  const blocked = alphabet && alphabet.unknown(lines.join("")).length > 0 && !controls.substitute.checked;
  controls.write.disabled = !modelReady || !lines.length || blocked;
  const drawn = page.state === "done";
  controls.downloadSvg.disabled = !drawn;
  controls.downloadPng.disabled = !drawn;
}

function seedValue() {
  const seed = Number(controls.seed.value);
  return Number.isInteger(seed) && seed >= 0 && seed <= 4294967295 ? seed : null;
}

function write() {
  const lines = pageLines(controls.text.value, config.wrap_width);
  const seed = seedValue();
  if (!lines.length) return;
  if (seed === null) return fail("The seed must be a whole number from 0 to 4294967295.");
  writeId += 1;
  stopDrawing();
  page.lines = lines;
  page.offsets = null;
  page.error = null;
  page.timings.firstStroke = page.timings.done = null;
  setState("writing", `Writing ${lines.length} line${lines.length > 1 ? "s" : ""}…`);
  updateButtons();
  const noise = page.testNoise;
  page.testNoise = null;
  worker.postMessage({
    type: "write",
    id: writeId,
    lines,
    bias: Number(controls.bias.value),
    seed,
    style: controls.style.value || null,
    substitute: controls.substitute.checked,
    noise,
  });
}

controls.text.addEventListener("input", checkCharacters);
controls.text.addEventListener("keydown", (event) => {
  // Ctrl+Enter (Cmd+Enter) writes from the text box; Enter alone starts a new line.
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !controls.write.disabled) {
    event.preventDefault();
    write();
  }
});
controls.substitute.addEventListener("change", checkCharacters);
controls.bias.addEventListener("input", showBias);
controls.speed.addEventListener("input", showSpeed);
controls.strokeWidth.addEventListener("input", restyle);
controls.colour.addEventListener("input", restyle);
$("new-seed").addEventListener("click", () => {
  controls.seed.value = crypto.getRandomValues(new Uint32Array(1))[0];
});
$("controls").addEventListener("submit", (event) => {
  event.preventDefault();
  if (!controls.write.disabled) write();
});
controls.downloadSvg.addEventListener("click", () => download(new Blob([svgDocument()], { type: "image/svg+xml" }), "handwriting.svg"));
controls.downloadPng.addEventListener("click", async () => download(await pngBlob(), "handwriting.png"));

// ---------------------------------------------------------------- drawing

/** Each line on its own row (zoo.render.svg.layout), scaled as save_svg scales: at most 1000 units wide. */
function placed(offsets) {
  const { rows, width, height } = layout(offsets.map((line) => line.flat()));
  const scale = Math.min(1, 1000 / width);
  const place = ([x, y]) => [x * scale + MARGIN, y * scale + MARGIN];
  return {
    rows: rows.map((strokes) => strokes.map((stroke) => stroke.map(place))),
    width: width * scale + 2 * MARGIN,
    height: height * scale + 2 * MARGIN,
  };
}

function pathData(points) {
  const [first, ...rest] = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`);
  // A stroke of one point is a dot: a tiny segment that the round cap makes visible.
  return rest.length ? `M${first} L${rest.join(" ")}` : `M${first} l0.1,0`;
}

function stopDrawing() {
  if (animation) cancelAnimationFrame(animation.frame);
  animation = null;
}

/** Draw the strokes as the pen moved: SPEEDS[speed] pen points per second, line after line. */
function draw(offsets) {
  const { rows, width, height } = placed(offsets);
  drawing.replaceChildren();
  drawing.setAttribute("viewBox", `0 0 ${width.toFixed(1)} ${height.toFixed(1)}`);
  const group = document.createElementNS(SVG_NS, "g");
  group.setAttribute("fill", "none");
  group.setAttribute("stroke-linecap", "round");
  group.setAttribute("stroke-linejoin", "round");
  drawing.append(group);
  restyle();
  const strokes = rows.flat();
  const total = strokes.reduce((n, s) => n + s.length, 0);
  let shown = 0; // points drawn so far
  let stroke = 0; // the stroke being drawn, its points drawn, and its element
  let inStroke = 0;
  let path = null;
  const began = performance.now();
  const frame = (now) => {
    const speed = SPEEDS[Number(controls.speed.value)];
    const target = Number.isFinite(speed) ? Math.min(total, Math.floor(((now - began) / 1000) * speed) + 1) : total;
    while (shown < target) {
      if (inStroke === strokes[stroke].length) {
        stroke += 1;
        inStroke = 0;
        path = null;
      }
      if (!path) {
        path = document.createElementNS(SVG_NS, "path");
        group.append(path);
        if (page.timings.firstStroke === null) page.timings.firstStroke = performance.now();
      }
      const take = Math.min(strokes[stroke].length - inStroke, target - shown);
      inStroke += take;
      shown += take;
      path.setAttribute("d", pathData(strokes[stroke].slice(0, inStroke)));
    }
    if (shown < total) {
      animation.frame = requestAnimationFrame(frame);
    } else {
      animation = null;
      page.timings.done = performance.now();
      setState("done");
      updateButtons();
    }
  };
  animation = { frame: requestAnimationFrame(frame) };
}

function restyle() {
  const group = drawing.querySelector("g");
  if (!group) return;
  group.setAttribute("stroke", controls.colour.value);
  group.setAttribute("stroke-width", String(Number(controls.strokeWidth.value) || 1.5));
}

// ---------------------------------------------------------------- downloads

/** The drawing as a standalone SVG file, which also carries the pen offsets as `zoo write`'s SVGs do (`zoo read` reads it). */
function svgDocument() {
  const { rows, width, height } = placed(page.offsets);
  const lines = page.offsets.map((line) => line.map((p) => p.map((v) => Math.round(v * 100) / 100)));
  const metadata = JSON.stringify({ format: OFFSETS_FORMAT, lines });
  const paths = rows.flat().map((stroke) => `<path d="${pathData(stroke)}"/>`);
  return [
    `<svg xmlns="${SVG_NS}" width="${width.toFixed(0)}" height="${height.toFixed(0)}" viewBox="0 0 ${width.toFixed(1)} ${height.toFixed(1)}">`,
    `<metadata id="${OFFSETS_ID}">${metadata}</metadata>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<g fill="none" stroke="${controls.colour.value}" stroke-width="${Number(controls.strokeWidth.value) || 1.5}" stroke-linecap="round" stroke-linejoin="round">`,
    ...paths,
    "</g></svg>",
    "",
  ].join("\n");
}

/** The SVG drawn on a canvas at twice its size. */
async function pngBlob() {
  const url = URL.createObjectURL(new Blob([svgDocument()], { type: "image/svg+xml" }));
  try {
    const image = new Image();
    image.src = url;
    await image.decode();
    const canvas = document.createElement("canvas");
    canvas.width = image.naturalWidth * 2;
    canvas.height = image.naturalHeight * 2;
    canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
    return await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  } finally {
    URL.revokeObjectURL(url);
  }
}

function download(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

start();
