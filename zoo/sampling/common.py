"""The numpy-only half of sampling, shared by the Keras samplers
(``zoo.sampling.handwriting``, ``zoo.sampling.text``) and the onnxruntime ones
(``export/runtime.py``).

Nothing here imports TensorFlow or Keras: the noise, the text encoding with
its stopping-rule padding, the step cap and the finishing of sampled lines,
the text model's uniforms, prime and streamed pieces, and the choice of
engine (``onnx_sampler``) are the same whichever engine runs the network, so
the two give the same strokes (and the same text) for the same seed.
"""

from __future__ import annotations

import codecs

import numpy as np


BACKENDS = ("auto", "keras", "onnx")
PRECISIONS = ("float32", "int8")
# The default bias of write() (eq. 61-62) for both engines and `zoo write`: at bias 0 the
# shipped model scribbles 9 of 10 unseen lines, at 0.75 two (README, "Handwriting synthesis").
WRITE_BIAS = 0.75


def uses_onnx(folder: str | None, backend: str = "auto", precision: str = "float32") -> bool:
    """Whether a model from the preset ``folder`` samples with onnxruntime (the rule of `onnx_sampler`)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)} (got {backend!r})")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} (got {precision!r})")
    if precision != "float32":
        if backend == "keras":
            raise ValueError(f"precision {precision!r} needs the onnxruntime backend (the int8 graphs of zoo export --int8), not keras")
        return True
    if backend == "auto":
        from export import runtime

        return bool(folder and runtime.current_export(folder))
    return backend == "onnx"


def onnx_sampler(model, backend: str = "auto", precision: str = "float32"):
    """The onnxruntime sampler of ``model``'s preset folder, or None to sample with Keras.

    ``auto``: onnxruntime when the model was loaded by from_preset from a folder
    whose ONNX export was made from the weights it holds now; ``keras``: never;
    ``onnx``: always, failing with the command that makes the export.
    ``precision="int8"`` (onnxruntime only: ``auto`` then means ``onnx``) uses
    the int8 graphs of ``zoo export --int8``, failing with that command if the
    folder has none.
    """
    folder = getattr(model, "preset_folder", None)
    if not uses_onnx(folder, backend, precision):
        return None
    from export import runtime

    if folder is None:
        raise ValueError(f"backend='onnx' (precision {precision}) needs a model loaded with from_preset() from a folder with an ONNX export")
    cached = getattr(model, "_onnx_sampler", None)
    if cached is None or cached.folder != folder or getattr(cached, "precision", "float32") != precision:
        cached = runtime.load(folder, precision=precision)
        model._onnx_sampler = cached
    return cached


def sampling_noise(steps: int, count: int, seed: int) -> np.ndarray:
    """(steps, count, 4): u_component, z1, z2, u_eos (see mixture.sample_point)."""
    rng = np.random.default_rng(seed)
    noise = np.empty((steps, count, 4), np.float32)
    noise[..., 0] = rng.random((steps, count))
    noise[..., 1:3] = rng.standard_normal((steps, count, 2))
    noise[..., 3] = rng.random((steps, count))
    return noise


def normalize(offsets, mean, std) -> np.ndarray:
    """Raw pen offsets (..., 3) -> ((dx, dy) - mean) / std, eos unchanged."""
    out = np.array(offsets, dtype=np.float32, copy=True)
    out[..., :2] = (out[..., :2] - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return out


def denormalize(offsets, mean, std) -> np.ndarray:
    out = np.array(offsets, dtype=np.float32, copy=True)
    out[..., :2] = out[..., :2] * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
    return out


def encode_lines(alphabet, lines, substitute: bool = False):
    """Text lines -> (ids per line, (B, U_max + 1) padded ids).

    One extra zero position so phi(t, U + 1) of the stopping rule exists for every line.
    """
    ids = [alphabet.encode(t, substitute=substitute) for t in lines]
    padded = np.zeros((len(ids), max(len(i) for i in ids) + 1), np.int32)
    for b, i in enumerate(ids):
        padded[b, : len(i)] = i
    return ids, padded


def resolve_prime(styles: dict, style: str | None, prime):
    """``style`` names one of ``styles`` ({name: (raw offsets, text)}); returns the prime to use, or ``prime``."""
    if style is None:
        return prime
    if style not in styles:
        raise ValueError(f"no style {style!r}; this model's styles are: {', '.join(styles) or 'none'}")
    return styles[style]


def step_cap(lengths, prime, max_steps_per_char: int) -> int:
    """The hard cap on sampled points: it counts the characters to write, not those of the prime."""
    primed_chars = len(prime[1]) + 1 if prime is not None else 0
    return int(max_steps_per_char * (np.max(lengths) - primed_chars))


def finish_lines(points, ends, mean, std) -> list[np.ndarray]:
    """Normalised points (count, steps, 3) -> raw offsets per line, cut at ``ends``, pen lifted at the end."""
    offsets = [denormalize(points[b, : ends[b]], mean, std) for b in range(len(ends))]
    for off in offsets:
        off[-1, 2] = 1.0
    return offsets


# ---------------------------------------------------------------- text (zoo.sampling.text, export/runtime.py)


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

    def __call__(self, k: int) -> str:
        if self.decoder is not None:
            return self.decoder.decode(bytes([k - 1]) if k > 0 else b"")
        piece = self.vocab.decode([k])
        if self.vocab.level == "word":
            return piece if piece == "\n" else piece + " "
        return piece
