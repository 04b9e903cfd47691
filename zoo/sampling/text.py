"""Sampling text from a LanguageModel one symbol at a time (Graves 2013, sec. 3.3).

As for handwriting, the randomness is drawn up front with NumPy (one uniform
per symbol) and the symbol is picked inside the compiled step by inverting the
softmax's cumulative distribution, so a seed fixes the text on every backend
and an exported step can take the same noise.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from keras import ops

from zoo import backend
from zoo.sampling.common import TextPieces, check_text_args, onnx_sampler, text_prime_ids, text_uniforms


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


def sample_text(
    model, prime: str = "", length: int = 500, temperature: float = 1.0, seed: int = 0, backend: str = "auto", precision: str = "float32"
) -> Iterator[str]:
    """Yield the continuation of ``prime`` piece by piece (stream it as it comes).

    Symbols outside the vocabulary in the prime are read as the unknown symbol.
    ``backend`` picks Keras or onnxruntime as for handwriting (``auto``: onnxruntime
    when the preset carries a current ONNX export); both give the same text for a seed.
    ``precision="int8"``: onnxruntime's int8 graphs (``zoo export --int8``), faster and approximate."""
    check_text_args(length, temperature)
    fast = onnx_sampler(model, backend, precision)
    if fast is not None:
        yield from fast.sample_text(prime=prime, length=length, temperature=temperature, seed=seed)
        return
    prime_ids = text_prime_ids(model.vocabulary, prime)
    step = make_text_step(model)
    uniforms = text_uniforms(length, 1, seed)
    temperature = np.float32(temperature)
    state = model.zero_state(1)
    ids = prime_ids[None, :]
    pieces = TextPieces(model.vocabulary)
    for t in range(length):
        nxt, state = step(ids, state, uniforms[t], temperature)
        k = int(ops.convert_to_numpy(nxt)[0])
        ids = np.array([[k]], np.int32)
        piece = pieces(k)
        if piece:
            yield piece
