// The page's Web Worker: runs the preset's exported graphs with onnxruntime-web (wasm backend),
// off the main thread so that the page stays responsive while it writes.
//
// It is the browser's engine and driver of zoo.sampling.driver.write, step for step: encode the
// lines (with the prime's text before them), teacher-force a style's prime line through the step
// graph (model.onnx), cap each line, draw the noise, run the whole sampling loop (loop.onnx:
// the model's step, Graves' stopping rule and the caps, as exported from zoo.sampling.loops),
// and finish the lines (cut at their ends, denormalise, lift the pen).
//
// Messages in:  {type: "load", config, base}                 config: /preset.json
//               {type: "write", id, lines, bias, seed, style, substitute, noise?}
// Messages out: {type: "ready", loadMs} | {type: "written", id, offsets, attempts, failed, steps, timings}
//               | {type: "error", id?, message}

import * as ort from "./ort/ort.wasm.min.mjs";
import { Alphabet, encodeLines, finishLines, lineCaps, longestDwell, normalize, rewriteSeed, samplingNoise, startInput } from "./writing.js";

ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;
// One thread, as Python's onnxruntime uses for graphs this small (export.runtime.default_threads);
// several threads would also need a cross-origin isolated page (SharedArrayBuffer).
ort.env.wasm.numThreads = 1;

const SESSION_OPTIONS = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };

let config = null;
let alphabet = null;
let base = null;
let loopSession = null;
let stepSession = null; // made on the first style: a page that writes without one never loads it

self.onmessage = async (event) => {
  const message = event.data;
  try {
    if (message.type === "load") await load(message);
    else if (message.type === "write") await write(message);
  } catch (error) {
    self.postMessage({ type: "error", id: message.id, message: String(error && error.message ? error.message : error) });
  }
};

async function load(message) {
  const started = performance.now();
  config = message.config;
  base = message.base;
  alphabet = new Alphabet(config.alphabet);
  loopSession = await ort.InferenceSession.create(new URL(config.graphs.loop, base).href, SESSION_OPTIONS);
  self.postMessage({ type: "ready", loadMs: performance.now() - started });
}

async function stepGraph() {
  if (!stepSession) stepSession = await ort.InferenceSession.create(new URL(config.graphs.step, base).href, SESSION_OPTIONS);
  return stepSession;
}

/** The zero state of `count` lines, in the exported graphs' flat layout ({name: shape with "batch"}). */
function zeroState(count) {
  const state = {};
  for (const [name, shape] of Object.entries(config.state)) {
    const dims = shape.map((d) => (d === "batch" ? count : d));
    state[name] = new ort.Tensor("float32", new Float32Array(dims.reduce((a, d) => a * d, 1)), dims);
  }
  return state;
}

/** The same row for each of `count` lines: (count, row.length) float32. */
function repeatRows(row, count) {
  const data = new Float32Array(row.length * count);
  for (let b = 0; b < count; b++) data.set(row, b * row.length);
  return new ort.Tensor("float32", data, [count, row.length]);
}

/**
 * Teacher-force a style's prime through the step graph (export.runtime.OnnxModel.teacher_force):
 * inputs are the start point then the prime's points but its last, the noise zero and the bias 0;
 * returns the state after them and the next input (the prime's last point).
 */
async function teacherForce(prime, state, text, count) {
  const session = await stepGraph();
  const { offset_mean: mean, offset_std: std } = config;
  const points = normalize(Float32Array.from(prime.offsets.flat()), mean, std);
  const still = new ort.Tensor("float32", new Float32Array(count * 4), [count, 4]);
  const bias = new ort.Tensor("float32", new Float32Array([0]), []);
  let x = repeatRows(startInput(mean, std), count);
  const last = points.length / 3 - 1;
  for (let t = 0; t <= last; t++) {
    const out = await session.run({ x, ...state, text, noise: still, bias });
    state = Object.fromEntries(Object.keys(state).map((name) => [name, out[`${name}_next`]]));
    x = repeatRows(points.subarray(3 * t, 3 * t + 3), count);
  }
  return { state, x };
}

/** Rows `lines` of a tensor along its batch axis `axis` (the stacked h and c have the layers first). */
function takeLines(tensor, axis, lines) {
  const dims = tensor.dims;
  const outer = dims.slice(0, axis).reduce((a, d) => a * d, 1);
  const inner = dims.slice(axis + 1).reduce((a, d) => a * d, 1);
  const data = new Float32Array(outer * lines.length * inner);
  for (let o = 0; o < outer; o++) {
    lines.forEach((b, j) => {
      const from = (o * dims[axis] + b) * inner;
      data.set(tensor.data.subarray(from, from + inner), (o * lines.length + j) * inner);
    });
  }
  const shape = dims.slice();
  shape[axis] = lines.length;
  return new ort.Tensor("float32", data, shape);
}

async function write({ id, lines, bias, seed, style, substitute, noise }) {
  const timings = {};
  let started = performance.now();
  const prime = style ? config.styles.find((s) => s.name === style) : null;
  if (style && !prime) throw new Error(`no style ${JSON.stringify(style)}; this model's styles are: ${config.styles.map((s) => s.name).join(", ") || "none"}`);
  const texts = prime ? lines.map((line) => `${prime.text} ${line}`) : lines;
  const count = texts.length;
  const { ids, padded, width } = encodeLines(alphabet, texts, substitute);
  const text = new ort.Tensor("int32", padded, [count, width]);
  const { offset_mean: mean, offset_std: std } = config;

  let state = zeroState(count);
  let x = repeatRows(startInput(mean, std), count);
  if (prime) {
    ({ state, x } = await teacherForce(prime, state, text, count));
    timings.primeMs = performance.now() - started;
    started = performance.now();
  }

  const caps = lineCaps(ids.map((i) => i.length), prime ? prime.text : null, config.max_steps_per_char);
  if (noise) {
    // Noise given by the page's test hook (numpy's, for the parity test): its first steps, for the first writing.
    const capMax = Math.max(...caps);
    if (noise.count !== count || noise.steps < capMax) {
      throw new Error(`the given noise is (${noise.steps}, ${noise.count}, 4); these lines need (>= ${capMax}, ${count}, 4)`);
    }
  }
  const maxDwell = noise && noise.maxDwell ? noise.maxDwell : config.max_dwell;

  // Write every line; a line that loops on one letter or runs to its cap is written again with
  // new noise, up to config.rewrites times, and the first writing is kept if every one fails
  // (driver.write_lines).
  const offsets = new Array(count);
  const attempts = new Array(count).fill(0);
  const failed = new Array(count).fill(false);
  let todo = Array.from({ length: count }, (_, b) => b);
  let steps = 0;
  for (let attempt = 0; attempt <= config.rewrites && todo.length; attempt++) {
    const n = todo.length;
    const subCaps = Int32Array.from(todo, (b) => caps[b]);
    const capMax = Math.max(...subCaps);
    const noiseData = attempt === 0 && noise ? noise.data.subarray(0, capMax * count * 4) : samplingNoise(capMax, n, rewriteSeed(seed, attempt));
    const subWidth = Math.max(...todo.map((b) => ids[b].length)) + 1;
    const subText = new Int32Array(n * subWidth);
    todo.forEach((b, j) => subText.set(padded.subarray(b * width, b * width + subWidth), j * subWidth));
    const feeds = {
      x: takeLines(x, 0, todo),
      ...Object.fromEntries(Object.entries(state).map(([name, tensor]) => [name, takeLines(tensor, config.state[name].indexOf("batch"), todo)])),
      text: new ort.Tensor("int32", subText, [n, subWidth]),
      noise: new ort.Tensor("float32", noiseData, [capMax, n, 4]),
      bias: new ort.Tensor("float32", new Float32Array([bias]), []),
      caps: new ort.Tensor("int32", subCaps, [n]),
    };
    const out = await loopSession.run(feeds, ["points", "phis", "ends"]);
    steps += out.points.dims[0];
    const ends = out.ends.data;
    const tried = finishLines(out.points.data, n, ends, mean, std);
    const again = [];
    todo.forEach((b, j) => {
      const dwell = longestDwell(out.phis.data, n, out.phis.dims[2], j, ends[j], ids[b].length);
      const bad = ends[j] >= caps[b] || dwell > maxDwell;
      attempts[b] = attempt + 1;
      if (attempt === 0 || !bad) {
        offsets[b] = tried[j];
        failed[b] = bad;
      }
      if (bad) again.push(b);
    });
    todo = again;
  }
  timings.loopMs = performance.now() - started;
  self.postMessage(
    { type: "written", id, offsets, attempts, failed, steps, timings },
    offsets.map((o) => o.buffer),
  );
}
