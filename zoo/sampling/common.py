"""The numpy-only half of handwriting sampling, shared by the Keras samplers
(``zoo.sampling.handwriting``) and the onnxruntime one (``export/runtime.py``).

Nothing here imports TensorFlow or Keras: the noise, the text encoding with
its stopping-rule padding, the step cap and the finishing of sampled lines
are the same whichever engine runs the network, so the two give the same
strokes for the same seed.
"""

from __future__ import annotations

import numpy as np


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
