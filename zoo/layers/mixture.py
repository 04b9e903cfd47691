"""Mixture density output for pen offsets (Graves 2013, eq. 15-26, bias eq. 61-62).

The network output y_hat_t = (e_hat, {pi_hat_j, mu_j, sigma_hat_j, rho_hat_j}_{j=1..M})
has 1 + 6M numbers. Column layout: [e_hat | pi_hat (M) | mu1 (M) | mu2 (M) |
sigma_hat1 (M) | sigma_hat2 (M) | rho_hat (M)].

eq. 18  e_t      = 1 / (1 + exp(e_hat_t))            end-of-stroke probability
eq. 19  pi^j_t   = softmax_j(pi_hat_t)  -> eq. 61 with bias b: softmax(pi_hat (1 + b))
eq. 20  mu^j_t   = mu_hat^j_t
eq. 21  sigma^j_t = exp(sigma_hat^j_t)  -> eq. 62 with bias b: exp(sigma_hat - b)
eq. 22  rho^j_t  = tanh(rho_hat^j_t)
eq. 23  Pr(x_{t+1}|y_t) = sum_j pi^j_t N(x_{t+1}|mu^j_t, sigma^j_t, rho^j_t) * {e_t if eos else 1 - e_t}
eq. 24-25  the bivariate normal with correlation
eq. 26  L(x) = sum_t -log(sum_j pi N(...)) - {log e_t if eos else log(1 - e_t)}

The density is a TensorFlow Probability mixture (MixtureSameFamily of
MultivariateNormalTriL) times a Bernoulli; sampling does the same maths by hand
from noise passed in, so that exported graphs (which cannot hold TFP's random
ops) draw the same strokes for the same noise.
"""

import keras
from keras import ops

from zoo import backend
from zoo.layers.gradient_clip import clip_gradient

# tanh saturates to exactly +-1 in float32, which makes the covariance singular.
RHO_LIMIT = 1.0 - 1e-5


def output_size(num_mixtures: int) -> int:
    return 1 + 6 * num_mixtures


def split_params(y_hat, num_mixtures: int, bias=0.0):
    """y_hat (..., 1+6M) -> dict of eos_logit, pi_logits, mu1, mu2, sigma1, sigma2, rho (eq. 18-22, 61-62).

    ``eos_logit`` is the logit of e_t, i.e. -e_hat (eq. 18 has exp(+e_hat)).
    """
    m = num_mixtures
    # One split, not seven slices (an exported sampling loop runs this every step).
    e_hat, pi_hat, mu1, mu2, s1_hat, s2_hat, rho_hat = ops.split(y_hat, [1 + k * m for k in range(6)], axis=-1)
    e_hat = ops.squeeze(e_hat, -1)
    return {
        "eos_logit": -e_hat,  # eq. 18
        "pi_logits": pi_hat * (1.0 + bias),  # eq. 19 / 61
        "mu1": mu1,  # eq. 20
        "mu2": mu2,
        "sigma1": ops.exp(s1_hat - bias),  # eq. 21 / 62
        "sigma2": ops.exp(s2_hat - bias),
        "rho": ops.clip(ops.tanh(rho_hat), -RHO_LIMIT, RHO_LIMIT),  # eq. 22
    }


def offset_distribution(params):
    """The mixture of M correlated bivariate normals over (dx, dy), as a TFP distribution (eq. 23-25)."""
    tfd = backend.tfd()
    s1, s2, rho = params["sigma1"], params["sigma2"], params["rho"]
    zero = ops.zeros_like(s1)
    # Cholesky factor of [[s1^2, rho s1 s2], [rho s1 s2, s2^2]].
    scale_tril = ops.stack(
        [ops.stack([s1, zero], axis=-1), ops.stack([rho * s2, s2 * ops.sqrt(1.0 - rho * rho)], axis=-1)],
        axis=-2,
    )
    loc = ops.stack([params["mu1"], params["mu2"]], axis=-1)
    return tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(logits=params["pi_logits"]),
        components_distribution=tfd.MultivariateNormalTriL(loc=loc, scale_tril=scale_tril),
    )


def eos_distribution(params):
    return backend.tfd().Bernoulli(logits=params["eos_logit"], dtype="float32")


def point_log_prob(y_hat, targets, num_mixtures: int):
    """log Pr(x_{t+1} | y_t) per step (eq. 23): targets (..., 3) = (dx, dy, eos)."""
    params = split_params(y_hat, num_mixtures)
    return offset_distribution(params).log_prob(targets[..., :2]) + eos_distribution(params).log_prob(targets[..., 2])


def sequence_nll(y_hat, targets, mask, num_mixtures: int):
    """eq. 26 per line: sum over the unmasked steps of -log Pr(x_{t+1} | y_t). Returns (B,)."""
    log_prob = point_log_prob(y_hat, targets, num_mixtures)
    mask = ops.cast(mask, log_prob.dtype)
    # where() keeps a padded step's NaN/inf out of the sum and of the gradient.
    return -ops.sum(ops.where(mask > 0, log_prob, 0.0), axis=-1)


def expected_offset(y_hat, num_mixtures: int):
    """E[(dx, dy)] under the mixture: sum_j pi_j mu_j. Used for the squared-error figure."""
    p = split_params(y_hat, num_mixtures)
    pi = ops.softmax(p["pi_logits"], axis=-1)
    return ops.stack([ops.sum(pi * p["mu1"], axis=-1), ops.sum(pi * p["mu2"], axis=-1)], axis=-1)


def sample_point(y_hat, noise, num_mixtures: int, bias=0.0):
    """Draw (dx, dy, eos) from the output distribution using given noise.

    noise (..., 4): u_component, z1, z2 ~ N(0, 1), u_eos, with u ~ U(0, 1).
    The component is chosen by inverting the cumulative pi; (dx, dy) is
    mu + L z with L the Cholesky factor of the chosen covariance.
    """
    p = split_params(y_hat, num_mixtures, bias)
    u_component, z1, z2, u_eos = ops.split(noise, 4, axis=-1)  # each (..., 1)
    pi = ops.softmax(p["pi_logits"], axis=-1)
    cdf = ops.cumsum(pi, axis=-1)
    chosen = ops.sum(ops.cast(cdf < u_component, "int32"), axis=-1)
    chosen = ops.minimum(chosen, num_mixtures - 1)
    one_hot = ops.one_hot(chosen, num_mixtures, dtype=y_hat.dtype)
    # The chosen component's (mu1, mu2, sigma1, sigma2, rho) in one product with the one-hot row.
    table = ops.stack([p[k] for k in ("mu1", "mu2", "sigma1", "sigma2", "rho")], axis=-1)  # (..., M, 5)
    mu1, mu2, s1, s2, rho = ops.split(ops.sum(ops.expand_dims(one_hot, -1) * table, axis=-2), 5, axis=-1)
    dx = mu1 + s1 * z1
    dy = mu2 + s2 * (rho * z1 + ops.sqrt(1.0 - rho * rho) * z2)
    eos = ops.cast(u_eos < ops.sigmoid(ops.expand_dims(p["eos_logit"], -1)), y_hat.dtype)
    return ops.concatenate([dx, dy, eos], axis=-1)


@keras.saving.register_keras_serializable("zoo")
class MixtureDensityHead(keras.layers.Layer):
    """eq. 3 output layer y_hat = b_y + W h, with output derivatives clipped (sec. 4.2)."""

    def __init__(self, num_mixtures=20, clip=100.0, **kwargs):
        super().__init__(**kwargs)
        self.num_mixtures = num_mixtures
        self.clip = clip
        self.dense = keras.layers.Dense(output_size(num_mixtures), name="y_hat")

    def build(self, input_shape):
        self.dense.build(input_shape)

    def head_weights(self):
        """(W_hy, b_y) as tensors, read once outside a time loop."""
        return ops.convert_to_tensor(self.dense.kernel), ops.convert_to_tensor(self.dense.bias)

    def apply(self, weights, hidden):
        """eq. 3 with given `head_weights()`: hidden (..., N*H) -> y_hat (..., 1 + 6M)."""
        kernel, bias = weights
        return clip_gradient(ops.matmul(hidden, kernel) + bias, self.clip)

    def call(self, hidden):
        return self.apply(self.head_weights(), hidden)

    def get_config(self):
        return {**super().get_config(), "num_mixtures": self.num_mixtures, "clip": self.clip}
