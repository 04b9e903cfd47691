"""Log-loss of a handwriting model on lines (Graves 2013, Table 3 and 4 figures)."""

from __future__ import annotations

import numpy as np
from keras import ops

from zoo import backend
from zoo.data.pipeline import batches_for
from zoo.layers import mixture


def evaluate_handwriting(model, lines, texts=None, batch_size: int = 32, progress: bool = False) -> dict:
    """NLL in nats per line and per point, squared error of the expected offset.

    ``lines`` are raw (unnormalised) offsets; the model's own normalisation is
    applied. A synthesis model also needs the lines' ``texts``. The squared
    error is in normalised units, as in the paper.
    """
    data = batches_for(model, lines, texts, batch_size=batch_size, shuffle=False)
    m = model.num_mixtures

    def batch_stats(x, y):
        y_hat = model(x)
        mask = y[..., 3]
        nll = mixture.sequence_nll(y_hat, y[..., :3], mask, m)
        err = ops.sum(ops.square(mixture.expected_offset(y_hat, m) - y[..., :2]), axis=-1)
        return nll, ops.sum(err * mask, axis=-1)

    batch_stats = backend.compile_function(batch_stats, jit_compile=False)
    nll_sum = sse_sum = points = 0.0
    steps = range(len(data))
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="evaluating", unit=" batches")
    for i in steps:
        x, y = data[i]
        nll, sse = batch_stats(x, y)
        nll_sum += float(np.sum(ops.convert_to_numpy(nll)))
        sse_sum += float(np.sum(ops.convert_to_numpy(sse)))
        points += float(y[..., 3].sum())
    n = len(data.lines)
    return {
        "lines": n,
        "points": int(points),
        "nll_nats_per_line": nll_sum / n,
        "nll_nats_per_point": nll_sum / points,
        "sse_per_point": sse_sum / points,
    }
