"""The sampling loops, in ``keras.ops``: the one loop that every engine runs.

The Keras engine compiles these functions (zoo.sampling.engines) and
``export/graphs.py`` wraps the same functions into the ONNX and SavedModel
loop graphs, so the step (the model's ``sample_step``), the stopping rule and
the per-line step cap exist once. The numpy driver (zoo.sampling.driver)
prepares what goes in (noise, text, caps, a primed state) and finishes what
comes out.

Stopping (Graves 2013, sec. 5.4): line b ends at the first step t > 0 where
the window's weight just past its text exceeds its weight on every character
(``window.past_the_end``), or after ``caps[b]`` points, whichever comes first.
"""

from keras import ops

from zoo import backend
from zoo.layers.window import past_the_end, text_end_masks


def text_context(model, text_ids):
    """Padded text ids (B, U + 1) -> (one-hot text for the window, end masks for the stopping rule)."""
    text_ids = ops.cast(text_ids, "int32")
    lengths = ops.sum(ops.cast(text_ids > 0, "int32"), axis=1)
    return model.text_onehot(text_ids), text_end_masks(lengths, ops.shape(text_ids)[1])


def strokes_loop(model, x, state, noise, bias, caps, text_ids=None):
    """Sample pen points until every line has ended.

    x (B, 3) the first input, ``state`` the model's step state, noise (T, B, 4)
    as drawn by zoo.sampling.common.sampling_noise, ``caps`` (B,) int32 points
    per line at most (<= T), ``text_ids`` (B, U + 1) for a synthesis model.
    Returns (points (T', B, 3), phis (T', B, U + 1) or None, ends (B,) int32,
    final state); rows of a line past its end are not part of it.
    """
    weights = model.step_weights()
    steps = ops.shape(noise)[0]
    caps = ops.cast(caps, "int32")
    running = ops.cast(steps, "int32")  # ends[b] == running: line b is still being written
    context, end_masks = text_context(model, text_ids) if text_ids is not None else (None, None)

    def body(t, carry):
        x, state, ends = carry
        point, _, state, window = model.sample_step(weights, x, state, ops.take(noise, t, axis=0), bias, context)
        done = t + 1 >= caps
        if window is not None:
            done = done | (past_the_end(window["phi"], end_masks) & (t > 0))
        ends = ops.where((ends == running) & done, t + 1, ends)
        return (point, state, ends), ((point, window["phi"]) if window is not None else (point,))

    ends = ops.full(ops.shape(caps), running, "int32")
    (_, state, ends), ys, _ = backend.while_collect(body, (x, state, ends), steps, lambda carry: ops.any(carry[2] == running))
    return ys[0], (ys[1] if len(ys) > 1 else None), ends, state


def pick_symbol(logits, u, temperature):
    """Inverse-CDF draw from softmax(logits / temperature) (eq. 12 at a temperature): (B, V), (B,) -> ids (B,)."""
    probs = ops.softmax(logits / temperature, axis=-1)
    below = ops.cast(ops.cumsum(probs, axis=-1) < u[:, None], "int32")
    return ops.minimum(ops.sum(below, axis=-1), ops.shape(logits)[-1] - 1)


def text_loop(model, prime, state, uniforms, temperature):
    """Read ``prime`` (B, P >= 1), then draw one symbol per row of ``uniforms`` (L, B): ids (L, B), final state.

    One loop of P - 1 + L steps: step t reads prime[:, t] while t < P, else the
    symbol drawn at step t - 1; only the draws from step P - 1 on are kept
    (those of the prime's steps use a spare uniform and are dropped).
    """
    weights = model.step_weights()
    prime = ops.cast(prime, "int32")
    p, length = ops.shape(prime)[1], ops.shape(uniforms)[0]
    first = p - 1
    uniforms = ops.concatenate([uniforms, ops.full((1, ops.shape(prime)[0]), 0.5, uniforms.dtype)], axis=0)  # the spare

    def body(t, carry):
        ids, state = carry
        logits, state = model.step(weights, ids, state)
        drawn = pick_symbol(logits, ops.take(uniforms, ops.where(t < first, length, t - first), axis=0), temperature)
        ids = ops.where(t + 1 < p, ops.take(prime, ops.minimum(t + 1, p - 1), axis=1), drawn)
        return (ids, state), drawn

    (_, state), drawn, _ = backend.while_collect(body, (prime[:, 0], state), first + length, lambda carry: True)
    return drawn[first:], state
