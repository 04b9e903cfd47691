"""The TensorFlow functions that are exported: one sampling step, the whole sampling loop, the log-likelihood.

Every model kind contributes one function ``model -> Graphs`` registered with
``@kind("ClassName")``; `savedmodel.py` saves its functions as signatures and
`onnx.py` converts its step and loop to ONNX. Kinds: prediction, synthesis
(noise-driven strokes) and text (symbols drawn by inverting the softmax's CDF
with one uniform per symbol, ``zoo.sampling.text.pick_symbol``).

The loops sample from noise given as an input, (steps, batch, 4) = u_component,
z1, z2, u_eos as drawn by ``zoo.sampling.common.sampling_noise``, with the
repo's own maths (``mixture.sample_point``, ``window.soft_window``,
``PeepholeLSTM.gates``), so that the Keras samplers, the SavedModel and the
ONNX graphs draw the same strokes for the same noise. For speed each LSTM
layer computes all four gates with one matmul over [inputs, h_{t-1}], and
weights are read once, outside the loop.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import tensorflow as tf
from keras import ops

from zoo.layers import mixture
from zoo.layers.window import past_the_end, soft_window, text_end_masks
from zoo.sampling.text import pick_symbol

KINDS: dict[str, Callable] = {}


def kind(class_name: str):
    """Register ``fn(model) -> Graphs`` as the exporter of models of class ``class_name``."""

    def register(fn):
        KINDS[class_name] = fn
        return fn

    return register


@dataclasses.dataclass
class Graphs:
    """What is exported of one model. Each function has an input_signature; outputs are dicts.

    ``step``: one sampling step, input + state + noise -> distribution parameters, sampled point, new state.
    ``loop``: the whole sampling loop over noise (steps, batch, ...).
    ``signatures``: further SavedModel-only functions (log-likelihood, samplers that draw their own noise).
    ``info``: JSON facts the numpy + onnxruntime sampler needs (kind, state layout, normalisation, alphabet).
    """

    kind: str
    step: Callable
    loop: Callable
    signatures: dict
    info: dict


def graphs_for(model) -> Graphs:
    name = type(model).__name__
    if name not in KINDS:
        raise ValueError(f"no exporter for {name}; exportable kinds: {', '.join(sorted(KINDS))}")
    return KINDS[name](model)


# ---------------------------------------------------------------- shared pieces


def _spec(shape, dtype=tf.float32, name=None):
    return tf.TensorSpec(shape, dtype, name=name)


def _fused_lstm_weights(cell):
    """([kernel; recurrent kernel], bias, peepholes) of a PeepholeLSTM, read once."""
    return tf.concat([cell.kernel, cell.recurrent_kernel], axis=0), tf.convert_to_tensor(cell.bias), tf.convert_to_tensor(cell.peephole)


def _lstm(cell, weights, inputs, h, c, projected=None):
    """One PeepholeLSTM step with every gate from one matmul over [inputs..., h_{t-1}]
    (plus ``projected``, an input projection the caller computed, e.g. rows looked up for one-hot inputs)."""
    kernel, bias, peephole = weights
    z = tf.matmul(tf.concat(list(inputs) + [h], axis=-1), kernel) + bias
    return cell.gates(z if projected is None else z + projected, c, peephole)


def _head_weights(model):
    return tf.convert_to_tensor(model.head.dense.kernel), tf.convert_to_tensor(model.head.dense.bias)


def _distribution(y_hat, num_mixtures, bias):
    """Mixture parameters after the bias (eq. 18-22, 61-62), as probabilities."""
    p = mixture.split_params(y_hat, num_mixtures, bias)
    return {
        "eos": tf.sigmoid(p["eos_logit"]),
        "pi": tf.nn.softmax(p["pi_logits"], axis=-1),
        **{k: p[k] for k in ("mu1", "mu2", "sigma1", "sigma2", "rho")},
    }


def _normalization(model):
    return np.asarray(model.offset_mean, np.float32), np.asarray(model.offset_std, np.float32)


def _start_input(model, batch):
    """model.start_input as a graph: a zero offset, pen down, normalised."""
    mean, std = _normalization(model)
    start = np.concatenate([-mean / std, [0.0]]).astype(np.float32)
    return tf.tile(tf.constant(start)[None], [batch, 1])


def _denormalize(model, points):
    mean, std = _normalization(model)
    return tf.concat([points[..., :2] * std + mean, points[..., 2:]], axis=-1)


def _graph_noise(steps, batch, seed):
    """Noise laid out as sampling_noise's, from TF's stateless generator (SavedModel samplers only:
    the strokes differ from numpy's for the same seed; pass numpy's noise to `loop` for those)."""
    shape = tf.stack([steps, batch])
    seeds = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    u = tf.random.stateless_uniform(tf.concat([shape, [2]], 0), seed=seeds)
    z = tf.random.stateless_normal(tf.concat([shape, [2]], 0), seed=seeds + [0, 1])
    return tf.stack([u[..., 0], z[..., 0], z[..., 1], u[..., 1]], axis=-1)


def _info(model, kind_name, state):
    mean, std = _normalization(model)
    return {
        "kind": kind_name,
        "model": type(model).__name__,
        "units": model.units,
        "num_layers": model.num_layers,
        "num_mixtures": model.num_mixtures,
        "offset_mean": mean.tolist(),
        "offset_std": std.tolist(),
        "state": state,  # name -> shape with "batch" for the batch axis
    }


# ---------------------------------------------------------------- prediction


@kind("HandwritingPredictor")
def prediction_graphs(model) -> Graphs:
    cells, m = model.lstm.cells, model.num_mixtures
    n_layers, units = model.num_layers, model.units

    def weights():
        return [_fused_lstm_weights(c) for c in cells], _head_weights(model)

    def core(w, x, hs, cs, noise, bias):
        (lstm_w, (head_k, head_b)) = w
        new_h, new_c, below = [], [], None
        for cell, cw, h, c in zip(cells, lstm_w, hs, cs):
            h, c = _lstm(cell, cw, [x] if below is None else [x, below], h, c)  # eq. 1-2
            new_h.append(h)
            new_c.append(c)
            below = h
        y_hat = tf.matmul(tf.concat(new_h, axis=-1), head_k) + head_b  # eq. 3
        return mixture.sample_point(y_hat, noise, m, bias), y_hat, new_h, new_c

    state_spec = [_spec((n_layers, None, units), name="h"), _spec((n_layers, None, units), name="c")]

    @tf.function(input_signature=[_spec((None, 3), name="x"), *state_spec, _spec((None, 4), name="noise"), _spec((), name="bias")])
    def step(x, h, c, noise, bias):
        point, y_hat, hs, cs = core(weights(), x, tf.unstack(h, n_layers), tf.unstack(c, n_layers), noise, bias)
        return {"point": point, "h_next": tf.stack(hs), "c_next": tf.stack(cs), **_distribution(y_hat, m, bias)}

    def run_loop(x, h, c, noise, bias):
        w = weights()
        steps = tf.shape(noise)[0]

        def body(t, x, hs, cs, points):
            point, _, hs, cs = core(w, x, hs, cs, tf.gather(noise, t), bias)
            return t + 1, point, hs, cs, points.write(t, point)

        _, _, hs, cs, points = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (tf.constant(0), x, tf.unstack(h, n_layers), tf.unstack(c, n_layers), tf.TensorArray(tf.float32, size=steps, element_shape=[None, 3])),
        )
        return points.stack(), tf.stack(hs), tf.stack(cs)

    @tf.function(input_signature=[_spec((None, 3), name="x"), *state_spec, _spec((None, None, 4), name="noise"), _spec((), name="bias")])
    def loop(x, h, c, noise, bias):
        points, h, c = run_loop(x, h, c, noise, bias)
        return {"points": points, "h_final": h, "c_final": c}

    @tf.function(input_signature=[_spec((None, None, 3), name="inputs"), _spec((None, None, 3), name="targets"), _spec((None, None), name="mask")])
    def log_likelihood(inputs, targets, mask):
        return {"log_likelihood": -mixture.sequence_nll(model(inputs), targets, mask, m)}

    @tf.function(input_signature=[_spec((), tf.int32, "count"), _spec((), tf.int32, "steps"), _spec((), name="bias"), _spec((), tf.int64, "seed")])
    def sample(count, steps, bias, seed):
        zeros = tf.zeros([n_layers, count, units])
        points, _, _ = run_loop(_start_input(model, count), zeros, zeros, _graph_noise(steps, count, seed), bias)
        return {"strokes": _denormalize(model, tf.transpose(points, [1, 0, 2]))}

    info = _info(model, "prediction", {"h": [n_layers, "batch", units], "c": [n_layers, "batch", units]})
    return Graphs("prediction", step, loop, {"log_likelihood": log_likelihood, "sample": sample}, info)


# ---------------------------------------------------------------- synthesis


@kind("HandwritingSynthesizer")
def synthesis_graphs(model) -> Graphs:
    cells, m, k = model.cells, model.num_mixtures, model.window_components
    n_layers, units, chars = model.num_layers, model.units, model.num_chars

    def weights():
        window = (tf.convert_to_tensor(model.window.dense.kernel), tf.convert_to_tensor(model.window.dense.bias))
        return [_fused_lstm_weights(c) for c in cells], window, _head_weights(model)

    def core(w, x, hs, cs, kappa, window_prev, onehot, end_masks, noise, bias):
        lstm_w, (win_k, win_b), (head_k, head_b) = w
        h, c = _lstm(cells[0], lstm_w[0], [x, window_prev], hs[0], cs[0])  # eq. 52
        window, kappa, phi = soft_window(tf.matmul(h, win_k) + win_b, kappa, onehot, k)  # eq. 46-51
        new_h, new_c = [h], [c]
        for cell, cw, h, c in zip(cells[1:], lstm_w[1:], hs[1:], cs[1:]):
            h, c = _lstm(cell, cw, [x, new_h[-1], window], h, c)  # eq. 53
            new_h.append(h)
            new_c.append(c)
        y_hat = tf.matmul(tf.concat(new_h, axis=-1), head_k) + head_b
        point = mixture.sample_point(y_hat, noise, m, bias)
        return point, y_hat, new_h, new_c, kappa, window, phi, past_the_end(phi, end_masks)

    def text_inputs(text):
        text = tf.cast(text, tf.int32)
        lengths = tf.reduce_sum(tf.cast(text > 0, tf.int32), axis=1)
        return model.text_onehot(text), text_end_masks(lengths, tf.shape(text)[1])

    state_spec = [
        _spec((n_layers, None, units), name="h"),
        _spec((n_layers, None, units), name="c"),
        _spec((None, k), name="kappa"),
        _spec((None, chars), name="w"),
        _spec((None, None), tf.int32, "text"),
    ]

    @tf.function(input_signature=[_spec((None, 3), name="x"), *state_spec, _spec((None, 4), name="noise"), _spec((), name="bias")])
    def step(x, h, c, kappa, w, text, noise, bias):
        onehot, end_masks = text_inputs(text)
        point, y_hat, hs, cs, kappa, w, phi, stop = core(weights(), x, tf.unstack(h, n_layers), tf.unstack(c, n_layers), kappa, w, onehot, end_masks, noise, bias)
        return {
            "point": point,
            "h_next": tf.stack(hs),
            "c_next": tf.stack(cs),
            "kappa_next": kappa,
            "w_next": w,
            "phi": phi,
            "past_end": stop,
            **_distribution(y_hat, m, bias),
        }

    def run_loop(x, h, c, kappa, w, text, noise, bias):
        """Sample until every line meets the stopping rule or the noise runs out (the cap)."""
        wts = weights()
        onehot, end_masks = text_inputs(text)
        steps = tf.shape(noise)[0]
        batch = tf.shape(x)[0]

        def body(t, x, hs, cs, kappa, w, ends, points, phis):
            point, _, hs, cs, kappa, w, phi, stop = core(wts, x, hs, cs, kappa, w, onehot, end_masks, tf.gather(noise, t), bias)
            # A line ends at the first step past t = 0 that meets the rule (as zoo.sampling.handwriting.write).
            ends = tf.where(stop & (ends == steps) & (t > 0), t + 1, ends)
            return t + 1, point, hs, cs, kappa, w, ends, points.write(t, point), phis.write(t, phi)

        _, _, hs, cs, kappa, w, ends, points, phis = tf.while_loop(
            lambda t, x, hs, cs, kappa, w, ends, *_: (t < steps) & tf.reduce_any(ends == steps),
            body,
            (
                tf.constant(0),
                x,
                tf.unstack(h, n_layers),
                tf.unstack(c, n_layers),
                kappa,
                w,
                tf.fill([batch], steps),
                tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=[None, 3]),
                tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=[None, None]),
            ),
        )
        return points.stack(), phis.stack(), ends

    loop_spec = [_spec((None, 3), name="x"), *state_spec, _spec((None, None, 4), name="noise"), _spec((), name="bias")]

    @tf.function(input_signature=loop_spec)
    def loop(x, h, c, kappa, w, text, noise, bias):
        points, phis, ends = run_loop(x, h, c, kappa, w, text, noise, bias)
        return {"points": points, "phis": phis, "ends": ends}

    @tf.function(
        input_signature=[_spec((None, None, 3), name="inputs"), _spec((None, None, 3), name="targets"), _spec((None, None), name="mask"), _spec((None, None), tf.int32, "text")]
    )
    def log_likelihood(inputs, targets, mask, text):
        return {"log_likelihood": -mixture.sequence_nll(model((inputs, text)), targets, mask, m)}

    # Characters -> ids as alphabet.encode does; characters the model does not know become spaces.
    codepoints = [ord(ch) for ch in model.alphabet.chars]
    table = np.full(max(codepoints) + 2, model.alphabet.index.get(" ", 0), np.int32)
    for ch, i in model.alphabet.index.items():
        table[ord(ch)] = i

    @tf.function(input_signature=[_spec((None,), tf.string, "text"), _spec((), name="bias"), _spec((), tf.int64, "seed"), _spec((), tf.int32, "max_steps_per_char")])
    def write(text, bias, seed, max_steps_per_char):
        """text lines -> raw pen offsets (batch, steps, 3) and each line's length, by Graves' stopping rule."""
        cp = tf.strings.unicode_decode(text, "UTF-8")
        ids = tf.gather(tf.constant(table), tf.minimum(cp, len(table) - 1)).to_tensor()
        ids = tf.pad(ids, [[0, 0], [0, 1]])  # phi(t, U + 1) of the stopping rule
        count = tf.shape(ids)[0]
        steps = max_steps_per_char * tf.reduce_max(tf.reduce_sum(tf.cast(ids > 0, tf.int32), axis=1))
        zeros = tf.zeros([n_layers, count, units])
        points, _, ends = run_loop(
            _start_input(model, count), zeros, zeros, tf.zeros([count, k]), tf.zeros([count, chars]), ids, _graph_noise(steps, count, seed), bias
        )
        strokes = _denormalize(model, tf.transpose(points, [1, 0, 2]))
        last = tf.one_hot(ends - 1, tf.shape(strokes)[1])  # lift the pen at the end
        strokes = tf.concat([strokes[..., :2], tf.maximum(strokes[..., 2:], last[..., None])], axis=-1)
        return {"strokes": strokes, "lengths": ends}

    info = _info(
        model,
        "synthesis",
        {"h": [n_layers, "batch", units], "c": [n_layers, "batch", units], "kappa": ["batch", k], "w": ["batch", chars]},
    )
    info["window_components"] = k
    info["alphabet"] = model.alphabet.get_config()
    return Graphs("synthesis", step, loop, {"log_likelihood": log_likelihood, "write": write}, info)


# ---------------------------------------------------------------- text


@kind("LanguageModel")
def text_graphs(model) -> Graphs:
    """Symbols one at a time (Graves sec. 3): ids + state -> logits (eq. 1-3) + new state; sampling
    draws each symbol by inverting softmax(logits / temperature)'s CDF at a given uniform (pick_symbol)."""
    cells, n_layers, units, v = model.cells, model.num_layers, model.units, model.vocab_size

    def weights():
        # x_t is one-hot: W_ihn x_t is row x_t of the kernel's first v rows (as LanguageModel.call);
        # the rest of the kernel (layer n > 1: W_h(n-1)hn) and the recurrent kernel are one fused matmul.
        lstm_w = []
        for cell in cells:
            kernel, bias, peephole = _fused_lstm_weights(cell)
            lstm_w.append((kernel[:v], (kernel[v:], bias, peephole)))
        return lstm_w, (tf.convert_to_tensor(model.output_kernel), tf.convert_to_tensor(model.output_bias))

    def core(w, ids, hs, cs):
        lstm_w, (out_k, out_b) = w
        new_h, new_c = [], []
        for cell, (rows, cw), h, c in zip(cells, lstm_w, hs, cs):
            below = [] if not new_h else [new_h[-1]]
            h, c = _lstm(cell, cw, below, h, c, projected=tf.gather(rows, ids))  # eq. 1-2
            new_h.append(h)
            new_c.append(c)
        return tf.matmul(tf.concat(new_h, axis=-1), out_k) + out_b, new_h, new_c  # eq. 3

    state_spec = [_spec((n_layers, None, units), name="h"), _spec((n_layers, None, units), name="c")]

    @tf.function(input_signature=[_spec((None,), tf.int32, "ids"), *state_spec, _spec((None,), name="u"), _spec((), name="temperature")])
    def step(ids, h, c, u, temperature):
        logits, hs, cs = core(weights(), ids, tf.unstack(h, n_layers), tf.unstack(c, n_layers))
        return {"logits": logits, "next_id": pick_symbol(logits, u, temperature), "h_next": tf.stack(hs), "c_next": tf.stack(cs)}

    def run_loop(prime, h, c, uniforms, temperature):
        """Read prime (B, P >= 1), then draw one symbol per row of uniforms (L, B): ids (L, B); P + L >= 2.

        One loop of P - 1 + L steps: step t reads prime[:, t] while t < P, else the symbol drawn
        at step t - 1; only the draws from step P - 1 on are kept (those of the prime's steps are
        made with a spare uniform and dropped)."""
        w = weights()
        p, length = tf.shape(prime)[1], tf.shape(uniforms)[0]
        first, total = p - 1, p - 1 + length
        uniforms = tf.concat([uniforms, tf.fill([1, tf.shape(prime)[0]], 0.5)], axis=0)  # the spare

        def body(t, x, hs, cs, drawn):
            logits, hs, cs = core(w, x, hs, cs)
            nxt = pick_symbol(logits, tf.gather(uniforms, tf.where(t < first, length, t - first)), temperature)
            x = tf.where(t + 1 < p, tf.gather(prime, tf.minimum(t + 1, p - 1), axis=1), nxt)
            return t + 1, x, hs, cs, drawn.write(t, nxt)

        _, _, hs, cs, drawn = tf.while_loop(
            lambda t, *_: t < total,
            body,
            (tf.constant(0), prime[:, 0], tf.unstack(h, n_layers), tf.unstack(c, n_layers), tf.TensorArray(tf.int32, size=total, element_shape=[None])),
        )
        return drawn.stack()[first:], tf.stack(hs), tf.stack(cs)

    loop_spec = [_spec((None, None), tf.int32, "prime"), *state_spec, _spec((None, None), name="uniforms"), _spec((), name="temperature")]

    @tf.function(input_signature=loop_spec)
    def loop(prime, h, c, uniforms, temperature):
        ids, h, c = run_loop(prime, h, c, uniforms, temperature)
        return {"ids": ids, "h_final": h, "c_final": c}

    @tf.function(input_signature=[_spec((None, None), tf.int32, "inputs"), _spec((None, None), tf.int32, "targets"), _spec((None, None), name="mask")])
    def log_likelihood(inputs, targets, mask):
        """nats per line: sum over t of mask * log Pr(targets_t | inputs_<=t) (eq. 12-13), from a zero state."""
        nll = ops.sparse_categorical_crossentropy(targets, model(inputs), from_logits=True)
        return {"log_likelihood": -tf.reduce_sum(nll * mask, axis=1)}

    vocab = model.vocabulary
    start = _text_start(vocab)

    @tf.function(input_signature=[_spec((), tf.string, "prime"), _spec((), tf.int32, "count"), _spec((), tf.int32, "length"), _spec((), name="temperature"), _spec((), tf.int64, "seed")])
    def sample(prime, count, length, temperature, seed):
        """A prime string -> ``count`` continuations of ``length`` symbols: ids (count, length) and text (count,).
        The uniforms come from TF's stateless generator, so the text is not numpy's for the same seed
        (feed numpy's uniforms to ``sample_loop`` for that)."""
        ids = _encode_text(vocab, prime)
        ids = tf.cond(tf.size(ids) > 0, lambda: ids, lambda: tf.constant(start))
        uniforms = tf.random.stateless_uniform(tf.stack([length, count]), seed=tf.stack([seed, tf.constant(0, tf.int64)]))
        zeros = tf.zeros([n_layers, count, units])
        drawn, _, _ = run_loop(tf.tile(ids[None], [count, 1]), zeros, zeros, uniforms, temperature)
        drawn = tf.transpose(drawn)
        return {"ids": drawn, "text": _decode_text(vocab, drawn)}

    info = {
        "kind": "text",
        "model": type(model).__name__,
        "units": units,
        "num_layers": n_layers,
        "vocab_size": v,
        "level": vocab.level,
        "state": {"h": [n_layers, "batch", units], "c": [n_layers, "batch", units]},
    }
    if len(vocab.symbols) <= 1000:  # the runtime reads it from config.json, or here when an export has none
        info["vocabulary"] = vocab.get_config()
    return Graphs("text", step, loop, {"log_likelihood": log_likelihood, "sample": sample}, info)


def _text_start(vocab) -> np.ndarray:
    from zoo.sampling.common import text_prime_ids

    return text_prime_ids(vocab, "")


def _encode_text(vocab, text):
    """A string -> ids (P,) in the graph, as Vocabulary.encode (unknown symbols -> 0)."""
    if vocab.level == "byte":
        return tf.cast(tf.io.decode_raw(text, tf.uint8), tf.int32) + 1
    if vocab.level == "word":
        words = tf.strings.split(text)
        match = tf.equal(words[:, None], tf.constant(vocab.symbols)[None, :])
        return tf.where(tf.reduce_any(match, axis=1), tf.cast(tf.argmax(tf.cast(match, tf.int32), axis=1), tf.int32) + 1, 0)
    table = np.zeros(max([ord(s) for s in vocab.symbols] + [0]) + 2, np.int32)
    for s, i in vocab.index.items():
        table[ord(s)] = i
    cp = tf.strings.unicode_decode(text, "UTF-8")
    return tf.gather(tf.constant(table), tf.minimum(cp, len(table) - 1))


def _decode_text(vocab, ids):
    """ids (B, L) -> strings (B,), as Vocabulary.decode (bytes as UTF-8 with U+FFFD for broken characters)."""
    if vocab.level == "byte":
        pieces = tf.constant([b""] + [bytes([b]) for b in range(256)])
        raw = tf.strings.reduce_join(tf.gather(pieces, ids), axis=-1)
        return tf.strings.unicode_transcode(raw, "UTF-8", "UTF-8", errors="replace")
    unknown = "<unk>" if vocab.level == "word" else "\ufffd"
    pieces = tf.gather(tf.constant([unknown] + [str(s) for s in vocab.symbols]), ids)
    if vocab.level == "word":
        text = tf.strings.reduce_join(pieces, axis=-1, separator=" ")
        return tf.strings.regex_replace(text, " ?<eos> ?", "\n")
    return tf.strings.reduce_join(pieces, axis=-1)
