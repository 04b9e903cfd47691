// What the page does around the network, mirroring the Python side line by line so that the
// page writes what `zoo write` writes: wrapping (zoo.cli.writing.page_lines), the alphabet
// (zoo.data.alphabet.Alphabet: unknown, substitute, encode), step caps, noise layout and rewrites
// (zoo.sampling.driver: line_caps, sampling_noise, rewrite_seed, longest_dwell), the normalisation (zoo.data.offsets) and
// finishing lines (driver.finish_lines), and the SVG layout (zoo.render.svg.layout).
// Pure functions, no DOM: the page (app.js) and the worker (worker.js) both import them.
//
// float32: numpy computes the normalisation in float32. Math.fround of a float64 +, -, * or /
// of two float32 values is exactly numpy's float32 result, so these functions round each
// operation as numpy does and the page's offsets are bit for bit those of the same points in Python.

const f32 = Math.fround;

// Python's str.isspace() characters (str.split() with no argument splits on runs of them).
const PY_WHITESPACE = "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const WHITESPACE_RUN = new RegExp(`[${PY_WHITESPACE}]+`, "gu");
// Python's str.splitlines() boundaries.
const LINE_BREAK = /\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/u;

/** Code points of a string (Python's len() and indexing count these, not UTF-16 units). */
export function codePoints(text) {
  return Array.from(text);
}

/**
 * Paragraphs -> lines of at most `width` characters, as zoo.cli.writing.page_lines:
 * whitespace collapsed, then textwrap.wrap(width, break_long_words=True, break_on_hyphens=False).
 */
export function pageLines(text, width) {
  const lines = [];
  for (const paragraph of text.split(LINE_BREAK)) {
    const words = paragraph.split(WHITESPACE_RUN).filter((w) => w.length > 0);
    if (words.length) lines.push(...wrapWords(words, width));
  }
  return lines;
}

/** textwrap.TextWrapper._wrap_chunks over the chunks "word", " ", "word", ... (drop_whitespace=True). */
function wrapWords(words, width) {
  const chunks = [];
  words.forEach((w, i) => {
    if (i) chunks.push([" "]);
    chunks.push(codePoints(w));
  });
  chunks.reverse(); // popped from the end, as textwrap does
  const lines = [];
  while (chunks.length) {
    const line = [];
    let length = 0;
    if (lines.length && chunks.at(-1).join("").trim() === "") chunks.pop(); // no space at a line's start
    while (chunks.length && length + chunks.at(-1).length <= width) {
      length += chunks.at(-1).length;
      line.push(chunks.pop());
    }
    if (chunks.length && chunks.at(-1).length > width) {
      // A word longer than a line fills what is left of this one (textwrap's _handle_long_word).
      const spaceLeft = width < 1 ? 1 : width - length;
      const chunk = chunks.at(-1);
      line.push(chunk.slice(0, spaceLeft));
      chunks[chunks.length - 1] = chunk.slice(spaceLeft);
    }
    if (line.length && line.at(-1).join("").trim() === "") line.pop(); // one trailing blank chunk, as textwrap drops it
    if (line.length) lines.push(line.map((c) => c.join("")).join(""));
  }
  return lines;
}

/** A model's alphabet (Alphabet(chars)): index 0 is padding, characters 1..K in code point order. */
export class Alphabet {
  constructor(chars) {
    this.chars = codePoints(chars).sort(byCodePoint);
    this.index = new Map(this.chars.map((c, i) => [c, i + 1]));
  }

  /** The characters of `text` the model never saw, sorted (Alphabet.unknown). */
  unknown(text) {
    return [...new Set(codePoints(text).filter((c) => !this.index.has(c)))].sort(byCodePoint);
  }

  /** Unknown characters -> their other case when the model knows it, else `replacement` (Alphabet.substitute). */
  substitute(text, replacement = " ") {
    return codePoints(text)
      .map((c) => {
        if (this.index.has(c)) return c;
        const swapped = swapCase(c);
        return this.index.has(swapped) ? swapped : replacement;
      })
      .join("");
  }

  /**
   * Text -> ids (Alphabet.encode): refuses blank text, then substitutes when asked, then throws,
   * naming them, on characters the model cannot write.
   */
  encode(text, substitute = false) {
    if (!text.trim()) throw new Error("the text is empty: give at least one character to write");
    if (substitute) text = this.substitute(text);
    const missing = this.unknown(text);
    if (missing.length) throw new Error(`the model cannot write ${missing.map((c) => JSON.stringify(c)).join(" ")}: rewrite the text, or substitute them`);
    return Int32Array.from(codePoints(text), (c) => this.index.get(c));
  }
}

function byCodePoint(a, b) {
  return a.codePointAt(0) - b.codePointAt(0);
}

/** Python's str.swapcase() of one character (a result of several characters is never in an alphabet). */
function swapCase(c) {
  const upper = c.toUpperCase();
  return upper !== c ? upper : c.toLowerCase();
}

/**
 * Text lines -> ids per line and the (B, U_max + 1) padded ids (driver.encode_lines): one extra
 * zero position, so phi(t, U + 1) of the stopping rule exists for every line.
 */
export function encodeLines(alphabet, texts, substitute = false) {
  const ids = texts.map((t) => alphabet.encode(t, substitute));
  const width = Math.max(...ids.map((i) => i.length)) + 1;
  const padded = new Int32Array(texts.length * width);
  ids.forEach((row, b) => padded.set(row, b * width));
  return { ids, padded, width };
}

/**
 * Each line's cap on sampled points (driver.line_caps): maxStepsPerChar per character of its own
 * text (the prime's characters and the space after them are read, not written), at least one.
 */
export function lineCaps(lengths, primeText, maxStepsPerChar) {
  const primed = primeText === null ? 0 : codePoints(primeText).length + 1;
  return Int32Array.from(lengths, (n) => Math.max(1, maxStepsPerChar * (n - primed)));
}

/**
 * Longest run of steps over which the window's peak (argmax over the first `length` characters)
 * stays on one character (driver.longest_dwell), for line `b` of the loop's phis (T', count, width),
 * flat, over its first `end` steps. A run longer than config.max_dwell is a loop on one letter.
 */
export function longestDwell(phis, count, width, b, end, length) {
  if (length < 1) return 0;
  let longest = 0;
  let run = 0;
  let previous = -1;
  for (let t = 0; t < end; t++) {
    const row = (t * count + b) * width;
    let peak = 0;
    for (let u = 1; u < length; u++) if (phis[row + u] > phis[row + peak]) peak = u;
    run = peak === previous ? run + 1 : 1;
    previous = peak;
    if (run > longest) longest = run;
  }
  return longest;
}

/** The noise seed of a line's `attempt`-th writing (driver.rewrite_seed; 0: the seed itself). */
export function rewriteSeed(seed, attempt) {
  return attempt === 0 ? seed : Number((BigInt(seed) + 7919n * BigInt(attempt)) % 4294967296n);
}

// ---------------------------------------------------------------- seeded noise

/**
 * A seeded generator: xoshiro128** (Blackman and Vigna), its state filled by SplitMix32 from the
 * seed. Uniforms in [0, 1) with 53 random bits (as numpy's random()), normals by Box-Muller.
 * Not numpy's PCG64: the same seed gives other strokes than Python's; the same seed gives the
 * same strokes on every page.
 */
export class SeededRandom {
  constructor(seed) {
    let s = seed >>> 0;
    const splitmix32 = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s = Uint32Array.from({ length: 4 }, splitmix32);
  }

  nextUint32() {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A uniform in [0, 1) of 53 bits. */
  random() {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }

  /** Two independent standard normals (Box-Muller; 1 - u keeps the logarithm finite). */
  normalPair() {
    const radius = Math.sqrt(-2 * Math.log(1 - this.random()));
    const angle = 2 * Math.PI * this.random();
    return [radius * Math.cos(angle), radius * Math.sin(angle)];
  }
}

function rotl(x, k) {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * (steps, count, 4) float32, flat: u_component, z1, z2, u_eos, as driver.sampling_noise lays it
 * out and in its order of drawing (every u_component, then every normal pair, then every u_eos).
 */
export function samplingNoise(steps, count, seed) {
  const rng = new SeededRandom(seed);
  const n = steps * count;
  const noise = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) noise[4 * i] = rng.random();
  for (let i = 0; i < n; i++) {
    const [z1, z2] = rng.normalPair();
    noise[4 * i + 1] = z1;
    noise[4 * i + 2] = z2;
  }
  for (let i = 0; i < n; i++) noise[4 * i + 3] = rng.random();
  return noise;
}

// ---------------------------------------------------------------- normalisation and finishing

/** Raw offsets (flat N x 3) -> ((dx, dy) - mean) / std in float32, eos unchanged (zoo.data.offsets.normalize). */
export function normalize(offsets, mean, std) {
  const out = new Float32Array(offsets.length);
  for (let i = 0; i < offsets.length; i += 3) {
    out[i] = f32(f32(offsets[i] - mean[0]) / std[0]);
    out[i + 1] = f32(f32(offsets[i + 1] - mean[1]) / std[1]);
    out[i + 2] = offsets[i + 2];
  }
  return out;
}

/** The first input of a line: a zero offset, pen down, normalised (zoo.data.offsets.start_input). */
export function startInput(mean, std) {
  return normalize([0, 0, 0], mean, std);
}

/**
 * The loop's normalised points (T', B, 3), flat -> raw offsets per line (driver.finish_lines):
 * line b is its first ends[b] points, denormalised in float32, the pen lifted at its end, and
 * starting at its first point (the travel to it, from the origin or a prime's end, zeroed).
 */
export function finishLines(points, count, ends, mean, std) {
  const lines = [];
  for (let b = 0; b < count; b++) {
    const line = new Float32Array(ends[b] * 3);
    for (let t = 0; t < ends[b]; t++) {
      const p = (t * count + b) * 3;
      line[3 * t] = f32(f32(points[p] * std[0]) + mean[0]);
      line[3 * t + 1] = f32(f32(points[p + 1] * std[1]) + mean[1]);
      line[3 * t + 2] = points[p + 2];
    }
    if (ends[b] > 0) {
      line[0] = 0;
      line[1] = 0;
      line[line.length - 1] = 1;
    }
    lines.push(line);
  }
  return lines;
}

// ---------------------------------------------------------------- drawing

/** Raw offsets (flat N x 3) -> absolute pen-down strokes [[x, y], ...] (zoo.render.svg.offsets_to_strokes). */
export function offsetsToStrokes(offsets) {
  const strokes = [];
  let x = 0;
  let y = 0;
  let stroke = [];
  for (let i = 0; i < offsets.length; i += 3) {
    x += offsets[i];
    y += offsets[i + 1];
    stroke.push([x, y]);
    if (offsets[i + 2] > 0.5) {
      strokes.push(stroke);
      stroke = [];
    }
  }
  if (stroke.length) strokes.push(stroke);
  return strokes;
}

/**
 * Each line on its own row, as zoo.render.svg.layout: rows of strokes moved so that the row's
 * top-left is at (0, row top), rows `lineGap` of their height apart; IAM-OnDB's y points down, as SVG's.
 */
export function layout(lines, lineGap = 0.25) {
  const rows = [];
  let top = 0;
  let width = 1;
  for (const offsets of lines) {
    const strokes = offsetsToStrokes(offsets);
    if (!strokes.length) {
      rows.push([]);
      continue;
    }
    const all = strokes.flat();
    const lo = [Math.min(...all.map((p) => p[0])), Math.min(...all.map((p) => p[1]))];
    const hi = [Math.max(...all.map((p) => p[0])), Math.max(...all.map((p) => p[1]))];
    const height = Math.max(hi[1] - lo[1], 1);
    rows.push(strokes.map((s) => s.map(([px, py]) => [px - lo[0], py - lo[1] + top])));
    width = Math.max(width, hi[0] - lo[0]);
    top += height * (1 + lineGap);
  }
  return { rows, width, height: Math.max(top, 1) };
}
