"""The one sampling driver, numpy only: everything around the network's loop.

It draws the noise (a seed fixes the strokes and the text on every engine),
encodes the text with its stopping-rule padding, primes the state with a real
line (sec. 5.5), sets each line's step cap, and cuts and denormalises what the
loop returns. The loop itself (the model's step, the stopping rule) runs in an
engine (zoo.sampling.engines): a compiled Keras function or an onnxruntime
session over the exported graph of the same function. An engine offers::

    kind, offset_mean, offset_std (handwriting), alphabet, styles (synthesis), vocabulary (text)
    zero_state(count) -> {name: array}            the flat state layout of the exported graphs
    teacher_force(inputs (B, T, 3), state, text) -> state   the prime, read step by step
    strokes_loop(x, state, noise, bias, caps, text=None) -> (points (T', B, 3), phis or None, ends (B,))
    text_loop(prime (B, P), state | None, uniforms (L, B), temperature) -> (ids (L, B), state)

Nothing here imports TensorFlow, Keras or onnxruntime.
"""

from __future__ import annotations

import codecs

import numpy as np

from zoo.data.offsets import denormalize, normalize, start_input


BACKENDS = ("auto", "keras", "onnx")
PRECISIONS = ("float32", "int8")
# The default bias of write() (eq. 61-62) for both engines and `zoo write`: at bias 0 the
# shipped model scribbles 9 of 10 unseen lines, at 0.75 two (README, "Handwriting synthesis").
WRITE_BIAS = 0.75


def sampling_noise(steps: int, count: int, seed: int) -> np.ndarray:
    """(steps, count, 4): u_component, z1, z2, u_eos (see mixture.sample_point)."""
    rng = np.random.default_rng(seed)
    noise = np.empty((steps, count, 4), np.float32)
    noise[..., 0] = rng.random((steps, count))
    noise[..., 1:3] = rng.standard_normal((steps, count, 2))
    noise[..., 3] = rng.random((steps, count))
    return noise


def encode_lines(alphabet, lines, substitute: bool = False):
    """Text lines -> (ids per line, (B, U_max + 1) padded ids).

    One extra zero position so phi(t, U + 1) of the stopping rule exists for every line.
    """
    ids = [alphabet.encode(t, substitute=substitute) for t in lines]
    padded = np.zeros((len(ids), max(len(i) for i in ids) + 1), np.int32)
    for b, i in enumerate(ids):
        padded[b, : len(i)] = i
    return ids, padded


NO_STYLE = "none"  # style=NO_STYLE: unprimed, whatever the preset's default style


def resolve_prime(styles: dict, style: str | None, prime, default: str | None = None):
    """The prime to write after: ``prime`` if given, else the style ``style`` names among ``styles``
    ({name: (raw offsets, text)}), or with ``style`` None the preset's ``default`` style; None
    (unprimed) for style ``"none"`` or when the preset has no default."""
    if style is None:
        style = default if prime is None else None
    if style is None or style == NO_STYLE:
        return prime
    if style not in styles:
        raise ValueError(f"no style {style!r}; this model's styles are: {', '.join(styles) or 'none'}")
    return styles[style]


def line_caps(lengths, prime, max_steps_per_char: int) -> np.ndarray:
    """Each line's hard cap on sampled points: ``max_steps_per_char`` per character of its own
    text (not counting the prime's characters, which are read, not written), at least one."""
    primed_chars = len(prime[1]) + 1 if prime is not None else 0
    return np.maximum(1, max_steps_per_char * (np.asarray(lengths) - primed_chars)).astype(np.int32)


def check_bias(bias) -> float:
    """The sampling bias b of eq. 61-62 must be a finite number >= 0."""
    try:
        value = float(bias)
    except (TypeError, ValueError):
        raise ValueError(f"bias must be a number >= 0, got {bias!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"bias must be a finite number >= 0 (0: the model's own variety; 0.5-2: neater), got {bias!r}")
    return value


def finish_lines(points, ends, mean, std) -> list[np.ndarray]:
    """Normalised points (count, steps, 3) -> raw offsets per line, cut at ``ends``, pen lifted at
    the end, and starting at its first point: the first offset, the travel to it from the origin
    or from the end of a prime, is zeroed (real lines start so). After a prime that travel is a
    word space (the prime's text and the line's are written as one, "prime line"), which a
    recognizer reads as a leading space: 70 of 96 primed testset_v lines did before this."""
    offsets = [denormalize(points[b, : ends[b]], mean, std) for b in range(len(ends))]
    for off in offsets:
        if len(off):
            off[0, :2] = 0.0
            off[-1, 2] = 1.0
    return offsets


# ---------------------------------------------------------------- text


def check_text_args(length: int, temperature: float) -> None:
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}; small values (0.5) give safer text, 1 the model's own distribution")


def text_uniforms(length: int, count: int, seed: int) -> np.ndarray:
    """(length, count): one uniform per symbol to draw, for the inverse-CDF pick (zoo.sampling.text.pick_symbol)."""
    return np.random.default_rng(seed).random((length, count)).astype(np.float32)


def text_prime_ids(vocab, prime) -> np.ndarray:
    """The ids read before the first draw: the prime's (unknown symbols as id 0), or without
    a prime a line break (``<eos>`` for words; a space for vocabularies without a line break)."""
    prime_ids = vocab.encode(prime) if prime else np.zeros(0, np.int32)
    if not len(prime_ids):
        start = vocab.encode("\n" if vocab.level != "word" else ["<eos>"])
        prime_ids = start if start[0] != 0 else vocab.encode(" ")
    return np.asarray(prime_ids, np.int32)


class TextPieces:
    """Sampled ids -> the pieces of text to stream: bytes decoded as UTF-8 incrementally
    (a piece may wait for the rest of its character), words followed by a space or a line break."""

    def __init__(self, vocab):
        self.vocab = vocab
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace") if vocab.level == "byte" else None

    def finish(self) -> str:
        """What an unfinished UTF-8 character at the end decodes to (U+FFFD), or ""."""
        return self.decoder.decode(b"", final=True) if self.decoder is not None else ""

    def __call__(self, k: int) -> str:
        if self.decoder is not None:
            return self.decoder.decode(bytes([k - 1]) if k > 0 else b"")
        piece = self.vocab.decode([k])
        if self.vocab.level == "word":
            return piece if piece == "\n" else piece + " "
        return piece


# ---------------------------------------------------------------- the drivers


def sample_strokes(engine, steps: int = 700, count: int = 1, bias: float = 0.0, seed: int = 0) -> np.ndarray:
    """``count`` unconditional samples of ``steps`` points drawn together: raw offsets (count, steps, 3)."""
    if steps < 1 or count < 1:
        raise ValueError(f"steps and count must be positive (got steps={steps}, count={count})")
    bias = check_bias(bias)
    x = start_input(count, engine.offset_mean, engine.offset_std)
    noise = sampling_noise(steps, count, seed)
    points, _, _ = engine.strokes_loop(x, engine.zero_state(count), noise, bias, np.full(count, steps, np.int32))
    return denormalize(np.asarray(points)[:steps].transpose(1, 0, 2), engine.offset_mean, engine.offset_std)


# A written line has failed when its window dwelt on one character for longer than real writing
# makes it, or when it ran to its step cap before the window passed its text. Biased sampling
# (eq. 61-62) can fall into a loop that redraws one letter while the window stays put: at bias 0.75
# the 3x400 network did so in 3 of 30 sentences, for 313 to 333 points. Read by each model's own
# window, no line of 300 real testset_v lines dwells longer than 138 points on one character
# (iam-synthesis-small; 122 for the 3x400 iam-synthesis; a median line's longest dwell is 39), so MAX_DWELL
# points mark a loop, not a wide letter. A failed line is written again with new noise, at most
# REWRITES times; if every try fails, the first is kept.
MAX_DWELL = 160
REWRITES = 2


def rewrite_seed(seed: int, attempt: int) -> int:
    """The noise seed of a line's ``attempt``-th writing (0: ``seed`` itself); export/web/writing.js has the same."""
    return seed if attempt == 0 else (int(seed) + 7919 * int(attempt)) % 2**32


def longest_dwell(phi: np.ndarray, length: int) -> int:
    """Longest run of steps over which the window's peak, argmax over the ``length`` characters of
    phi (steps, U), stays on one character."""
    if len(phi) == 0 or length < 1:
        return 0
    peak = np.asarray(phi)[:, :length].argmax(axis=1)
    changes = np.flatnonzero(np.diff(peak))
    return int(np.diff(np.concatenate([[-1], changes, [len(peak) - 1]])).max())


def state_batch_axes(engine) -> dict:
    """{state name: the axis of its array that runs over the lines} (the stacked h and c have the layers first)."""
    one, two = engine.zero_state(1), engine.zero_state(2)
    return {k: next(a for a, (m, n) in enumerate(zip(one[k].shape, two[k].shape)) if m != n) for k in one}


class Written(list):
    """The offsets of each line (a list), with per line: ``alignments`` (phi (steps, characters), the
    text phi runs over), ``attempts`` (how many times it was written), ``failed`` (whether the kept
    writing still dwelt too long or hit its cap)."""

    def __init__(self, count: int):
        super().__init__([None] * count)
        self.alignments, self.attempts, self.failed = [None] * count, [0] * count, [False] * count


def write(
    engine,
    lines,
    bias: float = WRITE_BIAS,
    seed: int = 0,
    prime: tuple[np.ndarray, str] | None = None,
    style: str | None = None,
    substitute: bool = False,
    max_steps_per_char: int = 40,
    return_alignment: bool = False,
    rewrites: int = REWRITES,
    max_dwell: int = MAX_DWELL,
):
    """Handwriting for each text in ``lines``, sampled together in one batch (see zoo.sampling.handwriting.write)."""
    written = write_lines(engine, lines, bias, seed, prime, style, substitute, max_steps_per_char, rewrites, max_dwell)
    if return_alignment:
        return list(written), written.alignments
    return list(written)


def write_lines(engine, lines, bias=WRITE_BIAS, seed=0, prime=None, style=None, substitute=False, max_steps_per_char=40,
                rewrites=REWRITES, max_dwell=MAX_DWELL) -> Written:
    """`write`, returning a `Written`: the offsets with each line's alignment, attempts and failure."""
    if getattr(engine, "kind", "synthesis") != "synthesis":
        raise ValueError(f"a {engine.kind} model cannot write text: use a synthesis preset such as iam-synthesis")
    if isinstance(lines, str):
        lines = [lines]
    if not lines:
        raise ValueError("no text given: pass at least one line to write")
    bias = check_bias(bias)
    if max_steps_per_char < 1:
        raise ValueError(f"max_steps_per_char must be >= 1, got {max_steps_per_char}")
    if rewrites < 0 or max_dwell < 1:
        raise ValueError(f"rewrites must be >= 0 and max_dwell >= 1, got rewrites={rewrites}, max_dwell={max_dwell}")
    texts = list(lines)
    prime = resolve_prime(engine.styles, style, prime, getattr(engine, "default_style", None))
    if prime is not None:
        texts = [f"{prime[1]} {t}" for t in texts]
    ids, padded = encode_lines(engine.alphabet, texts, substitute)
    count = len(texts)
    mean, std = engine.offset_mean, engine.offset_std
    state, x = engine.zero_state(count), start_input(count, mean, std)
    if prime is not None:
        # Teacher-force the prime line to carry its style in the state (sec. 5.5).
        primed = np.concatenate([x[:, None], np.repeat(normalize(prime[0], mean, std)[None], count, 0)], 1)
        state = engine.teacher_force(primed[:, :-1], state, padded)
        x = primed[:, -1]
    lengths = np.asarray([len(i) for i in ids])
    caps = line_caps(lengths, prime, max_steps_per_char)
    written = Written(count)
    todo = np.arange(count)
    batch_axes = state_batch_axes(engine)
    for attempt in range(rewrites + 1):
        # Only the lines still to write go into the loop; their text keeps one padding position.
        width = int(lengths[todo].max()) + 1
        noise = sampling_noise(int(caps[todo].max()), len(todo), rewrite_seed(seed, attempt))
        sub_state = {k: np.take(v, todo, axis=batch_axes[k]) for k, v in state.items()}
        points, phis, ends = engine.strokes_loop(x[todo], sub_state, noise, bias, caps[todo], padded[todo, :width])
        offsets = finish_lines(np.asarray(points).transpose(1, 0, 2), ends, mean, std)
        phis = np.asarray(phis).transpose(1, 0, 2)
        again = []
        for j, b in enumerate(todo):
            phi = phis[j, : ends[j], : lengths[b]]
            failed = bool(ends[j] >= caps[b] or longest_dwell(phi, lengths[b]) > max_dwell)
            written.attempts[b] = attempt + 1
            if attempt == 0 or not failed:  # a later try replaces the first only when it succeeds
                written[b], written.alignments[b], written.failed[b] = offsets[j], (phi, texts[b]), failed
            if failed:
                again.append(b)
        todo = np.asarray(again, int)
        if not len(todo):
            break
    return written


def sample_text(engine, prime: str = "", length: int = 500, temperature: float = 1.0, seed: int = 0, chunk: int = 64):
    """Yield the continuation of ``prime`` piece by piece, ``chunk`` symbols per call of the engine's loop
    (the state carried between calls), so the text streams; the same text for the same seed on every engine."""
    check_text_args(length, temperature)
    uniforms = text_uniforms(length, 1, seed)
    ids, state = text_prime_ids(engine.vocabulary, prime)[None], None
    pieces = TextPieces(engine.vocabulary)
    for a in range(0, length, chunk):
        drawn, state = engine.text_loop(ids, state, uniforms[a : a + chunk], temperature)
        drawn = np.asarray(drawn)
        for k in drawn[:, 0]:
            piece = pieces(int(k))
            if piece:
                yield piece
        ids = drawn[-1:].T
    rest = pieces.finish()
    if rest:  # a byte model's last character cut short: U+FFFD, as the graphs' decoding gives
        yield rest
