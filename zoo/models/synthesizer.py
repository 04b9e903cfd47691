"""Handwriting synthesis network (Graves 2013, sec. 5): write a given text.

The prediction network plus a soft window over the one-hot text (eq. 46-51)
computed from the first LSTM layer:

eq. 52  h^1_t = H(W_ih1 x_t + W_h1h1 h^1_{t-1} + W_wh1 w_{t-1} + b^1_h)
eq. 53  h^n_t = H(W_ihn x_t + W_h(n-1)hn h^(n-1)_t + W_hnhn h^n_{t-1} + W_whn w_t + b^n_h)

Layer 1 and the window depend on each other step by step, so they share one
time loop; layers 2..N then run over whole sequences, as in the predictor.
"""

import keras
from keras import ops

from zoo import backend
from zoo.data.alphabet import Alphabet
from zoo.layers import mixture
from zoo.layers.lstm_stack import PeepholeLSTM
from zoo.layers.window import SoftWindow, soft_window
from zoo.models.stroke_model import StrokeModel


@keras.saving.register_keras_serializable("zoo")
class HandwritingSynthesizer(StrokeModel):
    """inputs (strokes (B, T, 3), text ids (B, U)) -> y_hat (B, T, 1 + 6M)."""

    def __init__(
        self,
        alphabet,
        units=400,
        num_layers=3,
        num_mixtures=20,
        window_components=10,
        lstm_clip=10.0,
        output_clip=100.0,
        **kwargs,
    ):
        super().__init__(num_mixtures=num_mixtures, **kwargs)
        self.alphabet = alphabet if isinstance(alphabet, Alphabet) else Alphabet(**alphabet)
        self.units = units
        self.num_layers = num_layers
        self.window_components = window_components
        self.lstm_clip = lstm_clip
        self.output_clip = output_clip
        self.cells = [PeepholeLSTM(units, clip=lstm_clip, name=f"lstm_{n + 1}") for n in range(num_layers)]
        self.window = SoftWindow(window_components, name="window")
        self.head = mixture.MixtureDensityHead(num_mixtures, clip=output_clip, name="mixture")

    @property
    def num_chars(self) -> int:
        return len(self.alphabet)

    def build(self, input_shape=None):
        if self.built:
            return
        c = self.num_chars
        self.cells[0].build((None, None, 3 + c))  # eq. 52: x_t and w_{t-1}
        for cell in self.cells[1:]:
            cell.build((None, None, 3 + self.units + c))  # eq. 53: x_t, h^(n-1)_t, w_t
        self.window.build((None, self.units))
        self.head.build((None, None, self.units * self.num_layers))
        self.built = True

    def text_onehot(self, text_ids):
        """(B, U) ids, 0 = padding -> (B, U, C) one-hot rows, zero rows for padding."""
        return ops.one_hot(ops.cast(text_ids, "int32"), self.num_chars + 1)[..., 1:]

    def zero_state(self, batch: int):
        z = ops.zeros((batch, self.units))
        return [(z, z) for _ in self.cells] + [ops.zeros((batch, self.window_components)), ops.zeros((batch, self.num_chars))]

    def call(self, inputs, initial_state=None, return_state=False, return_window=False):
        strokes, text_ids = inputs
        batch = ops.shape(strokes)[0]
        state = initial_state or self.zero_state(batch)
        onehot = self.text_onehot(text_ids)
        first = self.cells[0]
        c = self.num_chars
        # Input part of layer 1 for every step at once; w_{t-1} joins inside the loop.
        projected = ops.matmul(strokes, first.kernel[:3]) + first.bias
        weights = first.loop_weights()
        kernel_w = ops.convert_to_tensor(first.kernel[3:])
        # Weights are read once here, not at every step (see PeepholeLSTM.loop_weights).
        window_kernel = ops.convert_to_tensor(self.window.dense.kernel)
        window_bias = ops.convert_to_tensor(self.window.dense.bias)

        def body(carry, x_t):
            (h, cell), kappa, w = carry
            h, cell = first.step(x_t + ops.matmul(w, kernel_w), h, cell, weights=weights)  # eq. 52
            params = ops.matmul(h, window_kernel) + window_bias  # eq. 48
            w, kappa, phi = soft_window(params, kappa, onehot, self.window_components)  # eq. 46-51
            return ((h, cell), kappa, w), (h, w, kappa, phi)

        (s1, kappa, w_last), (h1, ws, kappas, phis) = backend.scan(
            body, (tuple(state[0]), state[-2], state[-1]), ops.transpose(projected, (1, 0, 2))
        )
        h1, ws = ops.transpose(h1, (1, 0, 2)), ops.transpose(ws, (1, 0, 2))
        hidden, final = [h1], [s1]
        below = h1
        for cell, s in zip(self.cells[1:], state[1:-2]):
            below, s = cell(ops.concatenate([strokes, below, ws], axis=-1), initial_state=s)  # eq. 53
            hidden.append(below)
            final.append(s)
        y_hat = self.head(ops.concatenate(hidden, axis=-1))
        outputs = [y_hat]
        if return_state:
            outputs.append(final + [kappa, w_last])
        if return_window:
            outputs.append({"phi": ops.transpose(phis, (1, 0, 2)), "kappa": ops.transpose(kappas, (1, 0, 2))})
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def get_config(self):
        return {
            **super().get_config(),
            "alphabet": self.alphabet.get_config(),
            "units": self.units,
            "num_layers": self.num_layers,
            "window_components": self.window_components,
            "lstm_clip": self.lstm_clip,
            "output_clip": self.output_clip,
        }
