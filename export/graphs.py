"""The TensorFlow functions that are exported: one sampling step, the whole sampling loop, the log-likelihood.

Every model kind contributes one function ``model -> Graphs`` registered with
``@kind("ClassName")``; `savedmodel.py` saves its functions as signatures and
`onnx.py` converts its step and loop to ONNX. Nothing is re-derived here: the
step graph wraps the model's own step (``model.sample_step``, or the text
model's ``step`` and ``zoo.sampling.loops.pick_symbol``) and the loop graph
wraps the loop that the Keras engine compiles (``zoo.sampling.loops``), so
Keras, the SavedModel and the ONNX graphs draw the same strokes (and text)
for the same noise, stop lines by the same rule and cap them alike.

The loops sample from noise given as an input, (steps, batch, 4) = u_component,
z1, z2, u_eos as drawn by ``zoo.sampling.driver.sampling_noise``; ``caps``
(batch,) is each line's step cap (``zoo.sampling.driver.line_caps``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import tensorflow as tf
from keras import ops

from zoo.layers import mixture
from zoo.layers.window import past_the_end
from zoo.sampling import loops

# The layout of the graphs (inputs, outputs, semantics); export.runtime drives this format only.
FORMAT = 2

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


def _info(model, kind_name):
    mean, std = _normalization(model)
    return {
        "format": FORMAT,
        "kind": kind_name,
        "model": type(model).__name__,
        "units": model.units,
        "num_layers": model.num_layers,
        "num_mixtures": model.num_mixtures,
        "offset_mean": mean.tolist(),
        "offset_std": std.tolist(),
        "state": model.state_shapes(),  # name -> shape with "batch" for the batch axis
    }


# ---------------------------------------------------------------- handwriting


def _state_specs(model):
    """The flat state's input specs, in the order of model.state_shapes()."""
    return [_spec([None if d == "batch" else d for d in shape], name=k) for k, shape in model.state_shapes().items()]


def _named(model, values) -> dict:
    return dict(zip(model.state_shapes(), values))


@kind("HandwritingPredictor")
def prediction_graphs(model) -> Graphs:
    m = model.num_mixtures

    @tf.function(input_signature=[_spec((None, 3), name="x"), *_state_specs(model), _spec((None, 4), name="noise"), _spec((), name="bias")])
    def step(x, h, c, noise, bias):
        point, y_hat, state, _ = model.sample_step(model.step_weights(), x, model.unstack_state({"h": h, "c": c}), noise, bias)
        return {"point": point, **{f"{k}_next": v for k, v in model.stack_state(state).items()}, **_distribution(y_hat, m, bias)}

    loop_spec = [_spec((None, 3), name="x"), *_state_specs(model), _spec((None, None, 4), name="noise"), _spec((), name="bias"), _spec((None,), tf.int32, "caps")]

    @tf.function(input_signature=loop_spec)
    def loop(x, h, c, noise, bias, caps):
        points, _, ends, state = loops.strokes_loop(model, x, model.unstack_state({"h": h, "c": c}), noise, bias, caps)
        return {"points": points, "ends": ends, **{f"{k}_final": v for k, v in model.stack_state(state).items()}}

    @tf.function(input_signature=[_spec((None, None, 3), name="inputs"), _spec((None, None, 3), name="targets"), _spec((None, None), name="mask")])
    def log_likelihood(inputs, targets, mask):
        return {"log_likelihood": -mixture.sequence_nll(model(inputs), targets, mask, m)}

    @tf.function(input_signature=[_spec((), tf.int32, "count"), _spec((), tf.int32, "steps"), _spec((), name="bias"), _spec((), tf.int64, "seed")])
    def sample(count, steps, bias, seed):
        points, _, _, _ = loops.strokes_loop(
            model, _start_input(model, count), model.zero_state(count), _graph_noise(steps, count, seed), bias, tf.fill([count], steps)
        )
        return {"strokes": _denormalize(model, tf.transpose(points, [1, 0, 2]))}

    return Graphs("prediction", step, loop, {"log_likelihood": log_likelihood, "sample": sample}, _info(model, "prediction"))


@kind("HandwritingSynthesizer")
def synthesis_graphs(model) -> Graphs:
    m = model.num_mixtures
    state_specs = [*_state_specs(model), _spec((None, None), tf.int32, "text")]

    @tf.function(input_signature=[_spec((None, 3), name="x"), *state_specs, _spec((None, 4), name="noise"), _spec((), name="bias")])
    def step(x, h, c, kappa, w, text, noise, bias):
        onehot, end_masks = loops.text_context(model, text)
        state = model.unstack_state(_named(model, (h, c, kappa, w)))
        point, y_hat, state, window = model.sample_step(model.step_weights(), x, state, noise, bias, onehot)
        return {
            "point": point,
            **{f"{k}_next": v for k, v in model.stack_state(state).items()},
            "phi": window["phi"],
            "past_end": past_the_end(window["phi"], end_masks),
            **_distribution(y_hat, m, bias),
        }

    loop_spec = [_spec((None, 3), name="x"), *state_specs, _spec((None, None, 4), name="noise"), _spec((), name="bias"), _spec((None,), tf.int32, "caps")]

    @tf.function(input_signature=loop_spec)
    def loop(x, h, c, kappa, w, text, noise, bias, caps):
        state = model.unstack_state(_named(model, (h, c, kappa, w)))
        points, phis, ends, _ = loops.strokes_loop(model, x, state, noise, bias, caps, text)
        return {"points": points, "phis": phis, "ends": ends}

    @tf.function(
        input_signature=[_spec((None, None, 3), name="inputs"), _spec((None, None, 3), name="targets"), _spec((None, None), name="mask"), _spec((None, None), tf.int32, "text")]
    )
    def log_likelihood(inputs, targets, mask, text):
        return {"log_likelihood": -mixture.sequence_nll(model((inputs, text)), targets, mask, m)}

    # Characters -> ids as alphabet.encode does: a character the model does not know (-1 here) or an
    # empty line stops the call with the same advice as zoo write, never a silent substitute.
    codepoints = [ord(ch) for ch in model.alphabet.chars]
    table = np.full(max(codepoints) + 2, -1, np.int32)
    for ch, i in model.alphabet.index.items():
        table[ord(ch)] = i
    space = model.alphabet.index.get(" ", -1)
    unknown_message = (
        f"the text holds characters the model cannot write: it knows only {model.alphabet.chars!r}. "
        "Rewrite the text (or substitute them before the call, as zoo.data.alphabet.Alphabet.substitute does)"
    )

    @tf.function(input_signature=[_spec((None,), tf.string, "text"), _spec((), name="bias"), _spec((), tf.int64, "seed"), _spec((), tf.int32, "max_steps_per_char")])
    def write(text, bias, seed, max_steps_per_char):
        """text lines -> raw pen offsets (batch, steps, 3) and each line's length, by Graves' stopping rule."""
        cp = tf.strings.unicode_decode(text, "UTF-8")
        ragged = tf.gather(tf.constant(table), tf.minimum(cp, len(table) - 1))
        checks = [
            tf.debugging.assert_non_negative(ragged.flat_values, message=unknown_message),
            tf.debugging.assert_positive(
                tf.reduce_sum(tf.cast(ragged != space, tf.int32), axis=1),
                message="a line of the text is empty: give at least one character to write on every line",
            ),
        ]
        with tf.control_dependencies(checks):
            ids = tf.identity(ragged.to_tensor())
        ids = tf.pad(ids, [[0, 0], [0, 1]])  # phi(t, U + 1) of the stopping rule
        count = tf.shape(ids)[0]
        caps = tf.maximum(1, max_steps_per_char * tf.reduce_sum(tf.cast(ids > 0, tf.int32), axis=1))  # as driver.line_caps
        points, _, ends, _ = loops.strokes_loop(
            model, _start_input(model, count), model.zero_state(count), _graph_noise(tf.reduce_max(caps), count, seed), bias, caps, ids
        )
        strokes = _denormalize(model, tf.transpose(points, [1, 0, 2]))
        last = tf.one_hot(ends - 1, tf.shape(strokes)[1])  # lift the pen at the end
        strokes = tf.concat([strokes[..., :2], tf.maximum(strokes[..., 2:], last[..., None])], axis=-1)
        return {"strokes": strokes, "lengths": ends}

    info = _info(model, "synthesis")
    info["window_components"] = model.window_components
    info["alphabet"] = model.alphabet.get_config()
    return Graphs("synthesis", step, loop, {"log_likelihood": log_likelihood, "write": write}, info)


# ---------------------------------------------------------------- text


@kind("HandwritingRecognizer")
def recognition_graphs(model) -> Graphs:
    """One graph: normalised lines (B, T, 3) of ``lengths`` points -> CTC logits (B, frames, 1 + C) and frame counts."""

    @tf.function(input_signature=[_spec((None, None, 3), name="x"), _spec((None,), tf.int32, "lengths")])
    def logits(x, lengths):
        return {"logits": model((x, lengths)), "frames": model.frame_lengths(lengths)}

    mean, std = _normalization(model)
    info = {
        "format": FORMAT,
        "kind": "recognition",
        "model": type(model).__name__,
        "units": model.units,
        "num_layers": model.num_layers,
        "offset_mean": mean.tolist(),
        "offset_std": std.tolist(),
        "alphabet": model.alphabet.get_config(),
        "state": {},
    }
    return Graphs("recognition", logits, None, {}, info)


@kind("LanguageModel")
def text_graphs(model) -> Graphs:
    """Symbols one at a time (Graves sec. 3): ids + state -> logits (eq. 1-3) + new state; sampling
    draws each symbol by inverting softmax(logits / temperature)'s CDF at a given uniform (loops.pick_symbol)."""
    n_layers, units, v = model.num_layers, model.units, model.vocab_size
    state_specs = [_spec((n_layers, None, units), name="h"), _spec((n_layers, None, units), name="c")]

    @tf.function(input_signature=[_spec((None,), tf.int32, "ids"), *state_specs, _spec((None,), name="u"), _spec((), name="temperature")])
    def step(ids, h, c, u, temperature):
        logits, state = model.step(model.step_weights(), ids, model.unstack_state({"h": h, "c": c}))
        flat = model.stack_state(state)
        return {"logits": logits, "next_id": loops.pick_symbol(logits, u, temperature), "h_next": flat["h"], "c_next": flat["c"]}

    loop_spec = [_spec((None, None), tf.int32, "prime"), *state_specs, _spec((None, None), name="uniforms"), _spec((), name="temperature")]

    @tf.function(input_signature=loop_spec)
    def loop(prime, h, c, uniforms, temperature):
        ids, state = loops.text_loop(model, prime, model.unstack_state({"h": h, "c": c}), uniforms, temperature)
        flat = model.stack_state(state)
        return {"ids": ids, "h_final": flat["h"], "c_final": flat["c"]}

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
        (feed numpy's uniforms to the loop graph for that)."""
        ids = _encode_text(vocab, prime)
        ids = tf.cond(tf.size(ids) > 0, lambda: ids, lambda: tf.constant(start))
        uniforms = tf.random.stateless_uniform(tf.stack([length, count]), seed=tf.stack([seed, tf.constant(0, tf.int64)]))
        drawn, _ = loops.text_loop(model, tf.tile(ids[None], [count, 1]), model.zero_state(count), uniforms, temperature)
        drawn = tf.transpose(drawn)
        return {"ids": drawn, "text": _decode_text(vocab, drawn)}

    info = {
        "format": FORMAT,
        "kind": "text",
        "model": type(model).__name__,
        "units": units,
        "num_layers": n_layers,
        "vocab_size": v,
        "level": vocab.level,
        "state": model.state_shapes(),
    }
    if len(vocab.symbols) <= 1000:  # the runtime reads it from config.json, or here when an export has none
        info["vocabulary"] = vocab.get_config()
    return Graphs("text", step, loop, {"log_likelihood": log_likelihood, "sample": sample}, info)


def _text_start(vocab) -> np.ndarray:
    from zoo.sampling.driver import text_prime_ids

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
