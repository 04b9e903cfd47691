"""Sampling pen points from a handwriting model, one step at a time.

Noise is drawn up front with NumPy (component choice, two normals, end of
stroke) and fed to a compiled step, so a seed fixes the strokes whatever the
backend, and exported graphs can take the same noise as an input.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from zoo import backend
from zoo.layers import mixture


def sampling_noise(steps: int, count: int, seed: int) -> np.ndarray:
    """(steps, count, 4): u_component, z1, z2, u_eos (see mixture.sample_point)."""
    rng = np.random.default_rng(seed)
    noise = np.empty((steps, count, 4), np.float32)
    noise[..., 0] = rng.random((steps, count))
    noise[..., 1:3] = rng.standard_normal((steps, count, 2))
    noise[..., 3] = rng.random((steps, count))
    return noise


def make_step(model, bias: float):
    """Compiled (x_t (B,1,3), state, noise_t (B,4)) -> (x_{t+1} (B,1,3), state)."""

    def step(x, state, noise):
        y_hat, state = model(x, initial_state=state, return_state=True)
        point = mixture.sample_point(y_hat[:, 0], noise, model.num_mixtures, bias)
        return point[:, None, :], state

    return backend.compile_function(step, jit_compile=False)


def sample_unconditional(model, steps: int = 700, count: int = 1, bias: float = 0.0, seed: int = 0) -> np.ndarray:
    """``count`` samples of ``steps`` points, drawn together: raw offsets (count, steps, 3)."""
    if steps < 1 or count < 1:
        raise ValueError(f"steps and count must be positive (got steps={steps}, count={count})")
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
