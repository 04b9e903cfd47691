"""Deep LSTM with skip connections (Graves 2013, eq. 1-3 and 7-11).

eq. 1   h^1_t = H(W_ih1 x_t + W_h1h1 h^1_{t-1} + b^1_h)
eq. 2   h^n_t = H(W_ihn x_t + W_h(n-1)hn h^(n-1)_t + W_hnhn h^n_{t-1} + b^n_h)
eq. 3   y_t   = Y(b_y + sum_n W_hny h^n_t)

with H the peephole LSTM of eq. 7-11:

eq. 7   i_t = sigma(W_xi x_t + W_hi h_{t-1} + W_ci c_{t-1} + b_i)
eq. 8   f_t = sigma(W_xf x_t + W_hf h_{t-1} + W_cf c_{t-1} + b_f)
eq. 9   c_t = f_t c_{t-1} + i_t tanh(W_xc x_t + W_hc h_{t-1} + b_c)
eq. 10  o_t = sigma(W_xo x_t + W_ho h_{t-1} + W_co c_t + b_o)
eq. 11  h_t = o_t tanh(c_t)

The input part of every gate (W_x. x_t + b) is one matmul over the whole
sequence; only the recurrent part runs inside the time loop.
"""

import keras
from keras import ops

from zoo import backend
from zoo.layers.gradient_clip import clip_gradient


@keras.saving.register_keras_serializable("zoo")
class PeepholeLSTM(keras.layers.Layer):
    """One LSTM layer (eq. 7-11) whose gate derivatives are clipped to [-clip, clip]."""

    def __init__(self, units, clip=10.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.clip = clip

    def build(self, input_shape):
        n = self.units
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], 4 * n), initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(n, 4 * n), initializer="orthogonal")
        # Gate order i, f, c, o; forget bias 1 so early training remembers.
        self.bias = self.add_weight(
            name="bias",
            shape=(4 * n,),
            initializer=lambda shape, dtype=None: ops.concatenate(
                [ops.zeros((n,)), ops.ones((n,)), ops.zeros((2 * n,))]
            ),
        )
        self.peephole = self.add_weight(name="peephole", shape=(3, n), initializer="zeros")  # W_ci, W_cf, W_co

    def input_projection(self, inputs):
        """W_x. x_t + b for every step at once: (B, T, D) -> (B, T, 4H)."""
        return ops.matmul(inputs, self.kernel) + self.bias

    def loop_weights(self):
        """(recurrent kernel, peepholes) as tensors, read once outside a time loop
        so the loop does not re-read (and, for its gradient, accumulate) the variables."""
        return ops.convert_to_tensor(self.recurrent_kernel), ops.convert_to_tensor(self.peephole)

    def fused_weights(self):
        """([W_x.; W_h.], b, peepholes) as tensors for `fused_step`, read once outside a time loop."""
        return ops.concatenate([self.kernel, self.recurrent_kernel], axis=0), ops.convert_to_tensor(self.bias), ops.convert_to_tensor(self.peephole)

    def fused_step(self, weights, inputs, h, c, projected=None):
        """One time step with every gate from one matmul over [inputs..., h_{t-1}] (eq. 7-11).

        ``inputs`` is the list of this layer's inputs in the kernel's row order
        (eq. 1-2, 52-53); ``projected`` adds an input projection the caller made
        itself (the language model's looked-up one-hot rows)."""
        kernel, bias, peephole = weights
        z = ops.matmul(ops.concatenate(list(inputs) + [h], axis=-1), kernel) + bias
        return self.gates(z if projected is None else z + projected, c, peephole)

    def step(self, projected, h, c, weights):
        """One time step from the projected input (B, 4H), state (h, c) and `loop_weights()`."""
        u, peephole = weights
        return self.gates(projected + ops.matmul(h, u), c, peephole)

    def gates(self, z, c, peephole):
        """eq. 7-11 from the summed gate inputs z = W_x. x_t + W_h. h_{t-1} + b (B, 4H) and c_{t-1}.

        Split from `step` so that a caller may compute z with one fused matmul
        over [x_t, h_{t-1}] (the exported sampling loops do).
        """
        # Splits rather than slices: one op each in an exported graph's time loop.
        zi, zf, zc, zo = ops.split(z, 4, axis=-1)
        w_ci, w_cf, w_co = peephole[0], peephole[1], peephole[2]
        ifc = clip_gradient(ops.concatenate([zi + w_ci * c, zf + w_cf * c, zc], axis=-1), self.clip)
        i, f, g = ops.split(ifc, 3, axis=-1)
        i, f, g = ops.sigmoid(i), ops.sigmoid(f), ops.tanh(g)
        c = f * c + i * g  # eq. 9
        o = ops.sigmoid(clip_gradient(zo + w_co * c, self.clip))  # eq. 10
        h = o * ops.tanh(c)  # eq. 11
        return h, c

    def call(self, inputs, initial_state=None):
        """(B, T, D) -> hidden sequence (B, T, H) and final state (h, c)."""
        return self.run(self.input_projection(inputs), initial_state, self.loop_weights())

    def run(self, projected, initial_state=None, weights=None):
        """The time loop over an input projection (B, T, 4H) -> (B, T, H), final (h, c).

        A caller that projects its inputs itself (the language model looks up
        one-hot rows, eq. 1-2) or perturbs the weights (weight noise) enters here."""
        if initial_state is None:
            zeros = ops.zeros((ops.shape(projected)[0], self.units), dtype=projected.dtype)
            initial_state = (zeros, zeros)
        weights = weights or self.loop_weights()

        def body(state, x_t):
            h, c = self.step(x_t, *state, weights=weights)
            return (h, c), h

        final_state, hs = backend.scan(body, tuple(initial_state), ops.transpose(projected, (1, 0, 2)))
        return ops.transpose(hs, (1, 0, 2)), final_state

    def get_config(self):
        return {**super().get_config(), "units": self.units, "clip": self.clip}


@keras.saving.register_keras_serializable("zoo")
class SkipLSTMStack(keras.layers.Layer):
    """N PeepholeLSTM layers: the input reaches every layer, every layer the output."""

    def __init__(self, units=400, num_layers=3, clip=10.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.num_layers = num_layers
        self.clip = clip
        self.cells = [PeepholeLSTM(units, clip=clip, name=f"lstm_{n + 1}") for n in range(num_layers)]

    def build(self, input_shape):
        d = input_shape[-1]
        for n, cell in enumerate(self.cells):
            cell.build((None, None, d if n == 0 else d + self.units))  # eq. 1 / eq. 2

    def call(self, inputs, initial_state=None):
        """(B, T, D) -> concatenated hidden sequences (B, T, N*H), final states."""
        states = initial_state or [None] * self.num_layers
        outputs, final = [], []
        below = None
        for cell, state in zip(self.cells, states):
            layer_input = inputs if below is None else ops.concatenate([inputs, below], axis=-1)
            below, s = cell(layer_input, initial_state=state)
            outputs.append(below)
            final.append(s)
        return ops.concatenate(outputs, axis=-1), final  # eq. 3 sums W_hny h^n over this

    def zero_state(self, batch, dtype="float32"):
        z = ops.zeros((batch, self.units), dtype=dtype)
        return [(z, z) for _ in range(self.num_layers)]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "num_layers": self.num_layers, "clip": self.clip}
