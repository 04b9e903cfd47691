"""Sampling text from a LanguageModel one symbol at a time (Graves 2013, sec. 3.3).

As for handwriting, the randomness is drawn up front with NumPy (one uniform
per symbol) and the symbol is picked inside the compiled step by inverting the
softmax's cumulative distribution, so a seed fixes the text on every backend
and an exported step can take the same noise.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator

import numpy as np
from keras import ops

from zoo import backend


def pick_symbol(logits, u, temperature):
    """Inverse-CDF draw from softmax(logits / temperature): (B, V), (B,) -> ids (B,)."""
    probs = ops.softmax(logits / temperature, axis=-1)
    below = ops.cast(ops.cumsum(probs, axis=-1) < u[:, None], "int32")
    return ops.minimum(ops.sum(below, axis=-1), ops.shape(logits)[-1] - 1)


def make_text_step(model):
    """Compiled (ids (B, T), state, u (B,), temperature) -> (next ids (B,), state)."""

    def step(ids, state, u, temperature):
        logits, state = model(ids, initial_state=state, return_state=True)
        return pick_symbol(logits[:, -1], u, temperature), state

    return backend.compile_function(step, jit_compile=False)


def sample_text(model, prime: str = "", length: int = 500, temperature: float = 1.0, seed: int = 0) -> Iterator[str]:
    """Yield the continuation of ``prime`` piece by piece (stream it as it comes).

    Symbols outside the vocabulary in the prime are read as the unknown symbol."""
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}; small values (0.5) give safer text, 1 the model's own distribution")
    vocab = model.vocabulary
    prime_ids = vocab.encode(prime) if prime else np.zeros(0, np.int32)
    # Without a prime the first symbol read is a line break (a space for byte models without one).
    if not len(prime_ids):
        start = vocab.encode("\n" if vocab.level != "word" else ["<eos>"])
        prime_ids = start if start[0] != 0 else vocab.encode(" ")
    step = make_text_step(model)
    uniforms = np.random.default_rng(seed).random((length, 1)).astype(np.float32)
    temperature = np.float32(temperature)
    state = model.zero_state(1)
    ids = prime_ids[None, :].astype(np.int32)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace") if vocab.level == "byte" else None
    for t in range(length):
        nxt, state = step(ids, state, uniforms[t], temperature)
        k = int(ops.convert_to_numpy(nxt)[0])
        ids = np.array([[k]], np.int32)
        if decoder is not None:
            piece = decoder.decode(bytes([k - 1]) if k > 0 else b"")
        elif vocab.level == "word":
            piece = vocab.decode([k])
            piece = piece if piece == "\n" else piece + " "
        else:
            piece = vocab.decode([k])
        if piece:
            yield piece
