"""Log-loss of the zoo's models: handwriting lines (Graves 2013, Tables 3-4) and text (Tables 1-2)."""

from __future__ import annotations

import math

import keras
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


def _segments(n: int, seq_length: int):
    return [(a, min(a + seq_length, n)) for a in range(0, n, seq_length)]


def evaluate_text(model, ids, seq_length: int = 100, dynamic: bool = False, learning_rate: float = 0.3, progress: bool = False) -> dict:
    """Bits per symbol of a LanguageModel on one symbol sequence, read in order.

    The state is carried through the whole text (one stream, segments of
    ``seq_length`` symbols). Static: the weights stay fixed. Dynamic (Graves
    sec. 3.2): each segment is first scored, then the weights take one SGD step
    on that segment's loss before the next is read, so the model adapts to the
    text it has already seen; the caller's model is not changed.
    """
    ids = np.asarray(ids, np.int32)
    if len(ids) < 2:
        raise ValueError("the text has fewer than two symbols: nothing to predict")
    x_all, y_all = ids[None, :-1], ids[None, 1:]
    segments = _segments(x_all.shape[1], seq_length)
    if progress:
        from tqdm import tqdm

        segments = tqdm(segments, desc="dynamic evaluation" if dynamic else "evaluating", unit=" segments")
    nats = 0.0
    if not dynamic:

        def score(x, y, state):
            logits, state = model(x, initial_state=state, return_state=True)
            nll = ops.sparse_categorical_crossentropy(y, logits, from_logits=True)
            return ops.sum(nll), state

        score = backend.compile_function(score, jit_compile=False)
        state = model.zero_state(1)
        for a, b in segments:
            nll, state = score(x_all[:, a:b], y_all[:, a:b], state)
            nats += float(ops.convert_to_numpy(nll))
    else:
        from zoo.training.tbptt import CarriedState

        adapted = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
        adapted.build()
        adapted.set_weights(model.get_weights())
        adapted.sample_noise = False  # adapt the mean weights; no training noise
        reader = CarriedState(adapted, batch_size=1)
        reader.build()
        reader.compile(
            optimizer=keras.optimizers.SGD(learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=False,
        )
        for a, b in segments:
            # train_on_batch reports the loss of the weights before its update: a fair score.
            loss = reader.train_on_batch((x_all[:, a:b], np.full((1, 1), float(a == 0), np.float32)), y_all[:, a:b])
            nats += float(loss) * (b - a)
    n = x_all.shape[1]
    level = model.vocabulary.level
    result = {"symbols": int(n), "level": level, "unknown_symbols": int(np.sum(y_all == 0)), "seq_length": seq_length}
    key = "dynamic" if dynamic else "static"
    result[f"nats_per_symbol_{key}"] = nats / n
    result[f"{'bits_per_word' if level == 'word' else 'bpc'}_{key}"] = nats / n / math.log(2)
    if level == "word":
        result[f"perplexity_{key}"] = math.exp(nats / n)
    if dynamic:
        result["dynamic_learning_rate"] = learning_rate
    return result


def evaluate_recognizer(model, lines, texts, beam_width: int = 0, batch_size: int = 32, return_read: bool = False) -> dict:
    """Character and word error rates of a recognizer on real lines (raw offsets, their leading zero
    offset dropped as in training) against their transcriptions: edit distances summed over the
    lines over the summed reference lengths. Greedy decoding, or a beam search of ``beam_width``.
    ``return_read``: also the text read of each line (``read``)."""
    from zoo.reading import decode, error_rates, errors_by_class
    from zoo.sampling.engines import engine_for

    hypotheses = decode(engine_for(model, "keras"), [ln[1:] for ln in lines], beam_width, batch_size)
    result = {**error_rates(list(texts), hypotheses), "decoding": f"beam {beam_width}" if beam_width else "greedy"}
    for per_line in ("line_char_edits", "line_chars"):  # they serve paired comparisons of writers (bench/write_quality.py)
        result.pop(per_line)
    result["by_class"] = errors_by_class(list(texts), hypotheses)  # what the recognizer misses on real writing
    return {**result, "read": hypotheses} if return_read else result
