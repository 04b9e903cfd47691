"""The soft window over the text (Graves 2013, eq. 46-51).

eq. 46  phi(t, u) = sum_k alpha^k_t exp(-beta^k_t (kappa^k_t - u)^2)
eq. 47  w_t = sum_{u=1..U} phi(t, u) c_u
eq. 48  (alpha_hat_t, beta_hat_t, kappa_hat_t) = W_h1p h^1_t + b_p
eq. 49  alpha_t = exp(alpha_hat_t)
eq. 50  beta_t = exp(beta_hat_t)
eq. 51  kappa_t = kappa_{t-1} + exp(kappa_hat_t)

kappa only moves forward, so the window slides along the text as the pen
writes it. Characters are one-hot rows c_u; padded positions are zero rows and
so never enter w_t.
"""

import math

import keras
import numpy as np
from keras import ops

# IAM-OnDB training lines have 21.7 pen points per character on average.
POINTS_PER_CHAR = 21.7


def window_weights(alpha, beta, kappa, length: int):
    """phi(t, u) for u = 1..length (eq. 46): (B, K) x3 -> (B, length)."""
    u = ops.cast(ops.arange(1, length + 1), alpha.dtype)
    return ops.sum(alpha[:, :, None] * ops.exp(-beta[:, :, None] * ops.square(kappa[:, :, None] - u[None, None, :])), axis=1)


def soft_window(params, kappa_prev, text_onehot, num_components: int):
    """eq. 46-51 from the window parameters p = W_h1p h^1_t + b_p (B, 3K)."""
    k = num_components
    alpha = ops.exp(params[:, :k])  # eq. 49
    beta = ops.exp(params[:, k : 2 * k])  # eq. 50
    kappa = kappa_prev + ops.exp(params[:, 2 * k :])  # eq. 51
    phi = window_weights(alpha, beta, kappa, ops.shape(text_onehot)[1])  # eq. 46
    w = ops.einsum("bu,buc->bc", phi, text_onehot)  # eq. 47
    return w, kappa, phi


@keras.saving.register_keras_serializable("zoo")
class SoftWindow(keras.layers.Layer):
    """h^1_t, kappa_{t-1}, one-hot text -> w_t, kappa_t, phi(t, .)."""

    def __init__(self, num_components=10, points_per_char=POINTS_PER_CHAR, **kwargs):
        super().__init__(**kwargs)
        self.num_components = num_components
        self.points_per_char = points_per_char
        self.dense = keras.layers.Dense(3 * num_components, name="window_params")  # eq. 48

    def build(self, input_shape):
        self.dense.build(input_shape)
        # Why: with a zero bias exp(kappa_hat) starts near 1, so kappa runs one
        # character per pen point and leaves the text behind within a few dozen
        # points; training then has to drag it back before alignment can form.
        # Starting at 1 / points_per_char moves the window at the pace of the
        # data (eq. 51 unchanged, only its starting point).
        k = self.num_components
        bias = np.zeros(3 * k, "float32")
        bias[2 * k :] = -math.log(self.points_per_char)
        self.dense.bias.assign(bias)

    def call(self, h1, kappa_prev, text_onehot):
        return soft_window(self.dense(h1), kappa_prev, text_onehot, self.num_components)

    def get_config(self):
        return {**super().get_config(), "num_components": self.num_components, "points_per_char": self.points_per_char}
