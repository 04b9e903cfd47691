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
    alpha, beta, kappa = (ops.expand_dims(v, -1) for v in (alpha, beta, kappa))  # (B, K, 1)
    return ops.sum(alpha * ops.exp(-beta * ops.square(kappa - u)), axis=1)


def soft_window(params, kappa_prev, text_onehot, num_components: int):
    """eq. 46-51 from the window parameters p = W_h1p h^1_t + b_p (B, 3K)."""
    alpha, beta, kappa_step = ops.split(ops.exp(params), 3, axis=-1)  # eq. 49, 50
    kappa = kappa_prev + kappa_step  # eq. 51
    phi = window_weights(alpha, beta, kappa, ops.shape(text_onehot)[1])  # eq. 46
    w = ops.squeeze(ops.matmul(ops.expand_dims(phi, 1), text_onehot), 1)  # eq. 47
    return w, kappa, phi


def text_end_masks(lengths, positions: int):
    """What the stopping rule needs of each line's length U, made once per text.

    lengths (B,) -> (one-hot of position U + 1 (B, positions), additive mask
    (B, positions) that is 0 on u <= U and -inf beyond).
    """
    lengths = ops.cast(lengths, "int32")
    beyond = ops.one_hot(lengths, positions)
    on_text = ops.arange(positions)[None, :] < lengths[:, None]
    return beyond, ops.where(on_text, 0.0, -np.inf)


def past_the_end(phi, end_masks):
    """Graves' stopping rule (sec. 5.4): phi(t, U + 1) > phi(t, u) for all u <= U.

    phi (B, positions) over a text padded with at least one zero position,
    end_masks from `text_end_masks` -> (B,) bool.
    """
    beyond, off_text = end_masks
    return ops.sum(phi * beyond, axis=-1) > ops.max(phi + off_text, axis=-1)


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

    def param_weights(self):
        """(W_h1p, b_p) of eq. 48 as tensors, read once outside a time loop."""
        return ops.convert_to_tensor(self.dense.kernel), ops.convert_to_tensor(self.dense.bias)

    def apply(self, weights, h1, kappa_prev, text_onehot):
        """eq. 46-51 with given `param_weights()`: -> w_t, kappa_t, phi(t, .)."""
        kernel, bias = weights
        return soft_window(ops.matmul(h1, kernel) + bias, kappa_prev, text_onehot, self.num_components)  # eq. 48

    def call(self, h1, kappa_prev, text_onehot):
        return self.apply(self.param_weights(), h1, kappa_prev, text_onehot)

    def get_config(self):
        return {**super().get_config(), "num_components": self.num_components, "points_per_char": self.points_per_char}
