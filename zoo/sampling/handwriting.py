"""Sampling pen points from a handwriting model, one step at a time.

Noise is drawn up front with NumPy (component choice, two normals, end of
stroke) and fed to a compiled step, so a seed fixes the strokes whatever the
backend, and exported graphs can take the same noise as an input.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from zoo import backend as zoo_backend
from zoo.layers import mixture
from zoo.layers.window import past_the_end, text_end_masks
from zoo.sampling.common import BACKENDS, WRITE_BIAS, encode_lines, finish_lines, onnx_sampler, resolve_prime, sampling_noise, step_cap  # noqa: F401


def make_step(model, bias: float):
    """Compiled (x_t (B,1,3), state, noise_t (B,4)) -> (x_{t+1} (B,1,3), state)."""

    def step(x, state, noise):
        y_hat, state = model(x, initial_state=state, return_state=True)
        point = mixture.sample_point(y_hat[:, 0], noise, model.num_mixtures, bias)
        return point[:, None, :], state

    return zoo_backend.compile_function(step, jit_compile=False)


def sample_unconditional(
    model, steps: int = 700, count: int = 1, bias: float = 0.0, seed: int = 0, backend: str = "auto", precision: str = "float32"
) -> np.ndarray:
    """``count`` samples of ``steps`` points, drawn together: raw offsets (count, steps, 3).

    ``backend`` picks Keras or onnxruntime (see `onnx_sampler`); both draw the same strokes for a seed.
    ``precision="int8"``: onnxruntime's int8 graphs (``zoo export --int8``), faster and approximate.
    """
    if steps < 1 or count < 1:
        raise ValueError(f"steps and count must be positive (got steps={steps}, count={count})")
    fast = onnx_sampler(model, backend, precision)
    if fast is not None:
        return fast.sample(steps=steps, count=count, bias=bias, seed=seed)
    noise = sampling_noise(steps, count, seed)
    step = make_step(model, float(bias))
    x = ops.convert_to_tensor(model.start_input(count))
    state = model.zero_state(count)
    out = np.zeros((count, steps, 3), np.float32)
    for t in range(steps):
        x, state = step(x, state, ops.convert_to_tensor(noise[t]))
        out[:, t] = ops.convert_to_numpy(x)[:, 0]
    return model.denormalize(out)


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


# ---------------------------------------------------------------- synthesis


def make_write_step(model, bias: float):
    """Compiled (x_t, text ids, state, noise_t, end masks) -> (x_{t+1}, state, phi_t, past the end (B,))."""

    def step(x, ids, state, noise, end_masks):
        y_hat, state, window = model((x, ids), initial_state=state, return_state=True, return_window=True)
        point = mixture.sample_point(y_hat[:, 0], noise, model.num_mixtures, bias)
        phi = window["phi"][:, 0]
        return point[:, None, :], state, phi, past_the_end(phi, end_masks)

    return zoo_backend.compile_function(step, jit_compile=False)


def write(
    model,
    lines,
    bias: float = WRITE_BIAS,
    seed: int = 0,
    prime: tuple[np.ndarray, str] | None = None,
    style: str | None = None,
    substitute: bool = False,
    max_steps_per_char: int = 40,
    return_alignment: bool = False,
    backend: str = "auto",
    precision: str = "float32",
):
    """Handwriting for each text in ``lines``, sampled together in one batch.

    Sampling of a line stops by Graves' rule, when the window's weight beyond
    the last character exceeds its weight on every character
    (phi(t, U + 1) > phi(t, u) for all u <= U), or at ``max_steps_per_char``
    points per character. ``prime`` = (raw offsets, their text) of a real line
    fixes the style (sec. 5.5): the network reads it first, then writes on;
    ``style`` names one of the primes stored with the preset (``model.styles``).
    Returns raw offsets per line; with ``return_alignment`` also, per line,
    (phi (steps, characters), the text phi runs over, prime text included).
    ``backend`` picks Keras or onnxruntime (see `onnx_sampler`); both draw the same strokes for a seed.
    ``precision="int8"``: onnxruntime's int8 graphs (``zoo export --int8``), faster and approximate.
    """
    fast = onnx_sampler(model, backend, precision)
    if fast is not None:
        return fast.write(
            lines, bias=bias, seed=seed, prime=prime, style=style, substitute=substitute,
            max_steps_per_char=max_steps_per_char, return_alignment=return_alignment,
        )
    if isinstance(lines, str):
        lines = [lines]
    if not lines:
        raise ValueError("no text given: pass at least one line to write")
    texts = list(lines)
    prime = resolve_prime(getattr(model, "styles", {}), style, prime)
    if prime is not None:
        prime_offsets, prime_text = prime
        texts = [f"{prime_text} {t}" for t in texts]
    ids, padded = encode_lines(model.alphabet, texts, substitute)
    count = len(texts)
    state = model.zero_state(count)
    x = model.start_input(count)
    if prime is not None:
        # Teacher-force the prime line to carry its style in the state.
        primed = np.concatenate([x, np.repeat(model.normalize(prime_offsets)[None], count, 0)], 1)
        # Compiled: run eagerly, the time loop over the prime costs seconds.
        read = zoo_backend.compile_function(lambda x, ids, s: model((x, ids), initial_state=s, return_state=True)[1], jit_compile=False)
        state = read(ops.convert_to_tensor(primed[:, :-1]), ops.convert_to_tensor(padded), state)
        x = primed[:, -1:]
    lengths = np.asarray([len(i) for i in ids])
    max_steps = step_cap(lengths, prime, max_steps_per_char)
    noise = sampling_noise(max_steps, count, seed)
    step = make_write_step(model, float(bias))
    x, ids_t = ops.convert_to_tensor(x), ops.convert_to_tensor(padded)
    out = np.zeros((count, max_steps, 3), np.float32)
    phis = np.zeros((count, max_steps, padded.shape[1]), np.float32) if return_alignment else None
    ends = np.full(count, max_steps)
    end_masks = text_end_masks(lengths, padded.shape[1])
    for t in range(max_steps):
        x, state, phi, past_end = step(x, ids_t, state, ops.convert_to_tensor(noise[t]), end_masks)
        out[:, t] = ops.convert_to_numpy(x)[:, 0]
        if phis is not None:
            phis[:, t] = ops.convert_to_numpy(phi)
        # The stopping rule (window.past_the_end), from the second step on.
        done = ops.convert_to_numpy(past_end) & (ends == max_steps) & (t > 0)
        ends[done] = t + 1
        if np.all(ends < max_steps):
            break
    offsets = finish_lines(out, ends, model.offset_mean, model.offset_std)
    if return_alignment:
        return offsets, [(phis[b, : ends[b], : lengths[b]], texts[b]) for b in range(count)]
    return offsets
