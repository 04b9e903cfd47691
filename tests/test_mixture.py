"""The mixture density output against NumPy references of Graves' equations."""

import numpy as np
import pytest
from keras import ops

from zoo.layers import mixture

M = 5


def numpy_nll(y_hat, targets, mask):
    """eq. 18-26 written out in float64 NumPy."""
    e = 1.0 / (1.0 + np.exp(y_hat[..., 0]))  # eq. 18
    pi_hat = y_hat[..., 1 : 1 + M]
    pi = np.exp(pi_hat - pi_hat.max(-1, keepdims=True))
    pi /= pi.sum(-1, keepdims=True)  # eq. 19
    mu1, mu2 = y_hat[..., 1 + M : 1 + 2 * M], y_hat[..., 1 + 2 * M : 1 + 3 * M]  # eq. 20
    s1, s2 = np.exp(y_hat[..., 1 + 3 * M : 1 + 4 * M]), np.exp(y_hat[..., 1 + 4 * M : 1 + 5 * M])  # eq. 21
    rho = np.tanh(y_hat[..., 1 + 5 * M :])  # eq. 22
    x1, x2, eos = targets[..., :1], targets[..., 1:2], targets[..., 2]
    z = ((x1 - mu1) / s1) ** 2 + ((x2 - mu2) / s2) ** 2 - 2 * rho * (x1 - mu1) * (x2 - mu2) / (s1 * s2)  # eq. 25
    n = np.exp(-z / (2 * (1 - rho**2))) / (2 * np.pi * s1 * s2 * np.sqrt(1 - rho**2))  # eq. 24
    log_p = np.log((pi * n).sum(-1)) + np.where(eos > 0.5, np.log(e), np.log(1 - e))  # eq. 23
    return -(log_p * mask).sum(-1)  # eq. 26


def random_case(rng, batch=3, steps=7):
    y_hat = rng.normal(0, 0.7, size=(batch, steps, mixture.output_size(M)))
    targets = np.concatenate([rng.normal(0, 1, (batch, steps, 2)), rng.integers(0, 2, (batch, steps, 1))], -1)
    mask = np.ones((batch, steps))
    mask[0, 5:] = 0
    mask[2, 3:] = 0
    return y_hat, targets, mask


def test_sequence_nll_matches_numpy_reference():
    y_hat, targets, mask = random_case(np.random.default_rng(0))
    got = ops.convert_to_numpy(mixture.sequence_nll(ops.convert_to_tensor(y_hat), ops.convert_to_tensor(targets), ops.convert_to_tensor(mask), M))
    np.testing.assert_allclose(got, numpy_nll(y_hat, targets, mask), rtol=0, atol=1e-5)


def test_padded_steps_do_not_count_even_if_nonfinite():
    y_hat, targets, mask = random_case(np.random.default_rng(1))
    targets[0, 6] = np.nan  # garbage under the mask
    got = ops.convert_to_numpy(mixture.sequence_nll(ops.convert_to_tensor(y_hat), ops.convert_to_tensor(targets), ops.convert_to_tensor(mask), M))
    assert np.all(np.isfinite(got))
    targets[0, 6] = 0.0
    np.testing.assert_allclose(got, numpy_nll(y_hat, targets, mask), atol=1e-5)


def test_bias_sharpens_the_distribution():
    rng = np.random.default_rng(2)
    y_hat = ops.convert_to_tensor(rng.normal(0, 1, (4, mixture.output_size(M))))
    p0 = {k: ops.convert_to_numpy(v) for k, v in mixture.split_params(y_hat, M, 0.0).items()}
    p2 = {k: ops.convert_to_numpy(v) for k, v in mixture.split_params(y_hat, M, 2.0).items()}
    np.testing.assert_allclose(p2["sigma1"], p0["sigma1"] * np.exp(-2.0), rtol=1e-6)  # eq. 62
    np.testing.assert_allclose(p2["pi_logits"], p0["pi_logits"] * 3.0, rtol=1e-6)  # eq. 61


def test_sample_point_follows_the_distribution():
    # One dominant component: samples must have its mean, spread and correlation.
    y_hat = np.zeros((1, mixture.output_size(M)))
    y_hat[0, 1] = 30.0  # pi_1 ~ 1
    y_hat[0, 1 + M] = 1.5  # mu1
    y_hat[0, 1 + 2 * M] = -0.5  # mu2
    y_hat[0, 1 + 3 * M] = np.log(0.4)  # sigma1
    y_hat[0, 1 + 4 * M] = np.log(0.8)  # sigma2
    y_hat[0, 1 + 5 * M] = np.arctanh(0.6)  # rho
    y_hat[0, 0] = np.log(3.0)  # e = 1/(1+3) = 0.25
    n = 20000
    rng = np.random.default_rng(3)
    noise = np.concatenate([rng.random((n, 1)), rng.standard_normal((n, 2)), rng.random((n, 1))], -1)
    pts = ops.convert_to_numpy(mixture.sample_point(ops.convert_to_tensor(np.repeat(y_hat, n, 0)), ops.convert_to_tensor(noise), M))
    assert pts[:, 0].mean() == pytest.approx(1.5, abs=0.02)
    assert pts[:, 1].mean() == pytest.approx(-0.5, abs=0.03)
    assert pts[:, 0].std() == pytest.approx(0.4, rel=0.03)
    assert pts[:, 1].std() == pytest.approx(0.8, rel=0.03)
    assert np.corrcoef(pts[:, 0], pts[:, 1])[0, 1] == pytest.approx(0.6, abs=0.02)
    assert pts[:, 2].mean() == pytest.approx(0.25, abs=0.015)


def test_component_choice_inverts_the_cumulative_weights():
    y_hat = np.zeros((3, mixture.output_size(M)))  # uniform pi over 5 components
    y_hat[:, 1 + M : 1 + 2 * M] = np.arange(M)  # mu1 = component index
    y_hat[:, 1 + 3 * M : 1 + 5 * M] = -20.0  # sigma ~ 0
    noise = np.array([[0.05, 0, 0, 0.5], [0.45, 0, 0, 0.5], [0.99, 0, 0, 0.5]])
    pts = ops.convert_to_numpy(mixture.sample_point(ops.convert_to_tensor(y_hat), ops.convert_to_tensor(noise), M))
    np.testing.assert_allclose(pts[:, 0], [0, 2, 4], atol=1e-6)
