"""Sampling handwriting from a Keras model: unconditional strokes (sec. 4) and writing a text (sec. 5).

Both are the numpy driver (zoo.sampling.driver) on the engine that
zoo.sampling.engines chooses for the model: onnxruntime over a current export
of its preset, or the model's own compiled loop. A seed fixes the strokes
whichever engine runs.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from zoo.layers import mixture
from zoo.sampling import driver
from zoo.sampling.engines import engine_for


def sample_unconditional(
    model, steps: int = 700, count: int = 1, bias: float = 0.0, seed: int = 0, backend: str = "auto", precision: str = "float32"
) -> np.ndarray:
    """``count`` samples of ``steps`` points, drawn together: raw offsets (count, steps, 3).

    ``backend`` picks Keras or onnxruntime (zoo.sampling.engines.choose); both draw the same strokes for a seed.
    ``precision="int8"``: onnxruntime's int8 graphs (``zoo export --int8``), faster and approximate.
    """
    return driver.sample_strokes(engine_for(model, backend, precision), steps=steps, count=count, bias=bias, seed=seed)


def write(model, lines, backend: str = "auto", precision: str = "float32", **options):
    """Handwriting for each text in ``lines``, sampled together in one batch.

    ``options`` are `zoo.sampling.driver.write`'s, which owns their defaults:
    ``bias`` (0.75), ``seed`` (0), ``prime``, ``style``, ``substitute``,
    ``max_steps_per_char`` (40), ``return_alignment``, ``rewrites`` (2), ``max_dwell`` (160).
    Sampling of a line stops by Graves' rule, when the window's weight beyond
    the last character exceeds its weight on every character
    (phi(t, U + 1) > phi(t, u) for all u <= U), or after ``max_steps_per_char``
    points per character of that line. A line that ran to that cap, or whose
    window stayed on one character for more than ``max_dwell`` points (a loop
    that redraws one letter; real lines dwell at most about 140), is written
    again with new noise, up to ``rewrites`` times (`zoo.sampling.driver.MAX_DWELL`). ``bias`` (eq. 61-62) is a finite number
    >= 0. ``prime`` = (raw offsets, their text) of a real line fixes the style
    (sec. 5.5): the network reads it first, then writes on; ``style`` names one
    of the primes stored with the preset (``model.styles``); left out, the
    preset's default style (``model.default_style``, the most legible of its
    styles; None for iam-synthesis, which reads best unprimed) is used, and
    ``style="none"`` writes unprimed. Returns raw
    offsets per line; with ``return_alignment`` also, per line, (phi (steps,
    characters), the text phi runs over, prime text included). ``backend``
    picks Keras or onnxruntime (zoo.sampling.engines.choose); both draw the same
    strokes for a seed. ``precision="int8"``: onnxruntime's int8 graphs
    (``zoo export --int8``), faster and approximate.

        >>> from zoo.presets import from_preset
        >>> lines = write(from_preset("iam-synthesis"), ["Hello world"], bias=1.0, seed=0)
        >>> lines[0].shape[1]
        3
    """
    return driver.write(engine_for(model, backend, precision), lines, **options)


def predictive_params(model, raw_offsets: np.ndarray) -> dict:
    """Mixture parameters at each step of a real line, in tablet units (for figures).

    Row t predicts offset t+1 from points 0..t.
    """
    x = model.normalize(raw_offsets)[None, :-1]
    y_hat = model(ops.convert_to_tensor(x))
    p = {k: ops.convert_to_numpy(v)[0] for k, v in mixture.split_params(y_hat, model.num_mixtures).items()}
    mean, std = np.asarray(model.offset_mean), np.asarray(model.offset_std)
    pi = np.exp(p["pi_logits"] - p["pi_logits"].max(axis=-1, keepdims=True))
    return {
        "pi": pi / pi.sum(axis=-1, keepdims=True),
        "mu1": p["mu1"] * std[0] + mean[0],
        "mu2": p["mu2"] * std[1] + mean[1],
        "sigma1": p["sigma1"] * std[0],
        "sigma2": p["sigma2"] * std[1],
        "rho": p["rho"],
        "eos": 1.0 / (1.0 + np.exp(-p["eos_logit"])),
    }
