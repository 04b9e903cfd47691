"""Sampling text from a LanguageModel one symbol at a time (Graves 2013, sec. 3.3).

As for handwriting, the randomness is drawn up front with NumPy (one uniform
per symbol) and the symbol is picked inside the loop by inverting the
softmax's cumulative distribution (zoo.sampling.loops.pick_symbol), so a seed
fixes the text on every engine.
"""

from __future__ import annotations

from collections.abc import Iterator

from zoo.sampling import driver
from zoo.sampling.engines import engine_for


def sample_text(
    model, prime: str = "", length: int = 500, temperature: float = 1.0, seed: int = 0, backend: str = "auto", precision: str = "float32"
) -> Iterator[str]:
    """Yield the continuation of ``prime`` piece by piece (stream it as it comes).

    Symbols outside the vocabulary in the prime are read as the unknown symbol.
    ``backend`` picks Keras or onnxruntime as for handwriting (``auto``: onnxruntime
    when the preset carries a current ONNX export); both give the same text for a seed.
    ``precision="int8"``: onnxruntime's int8 graphs (``zoo export --int8``), faster and approximate."""
    yield from driver.sample_text(engine_for(model, backend, precision), prime=prime, length=length, temperature=temperature, seed=seed)
