"""Handwriting synthesis network (Graves 2013, sec. 5): write a given text.

The prediction network plus a soft window over the one-hot text (eq. 46-51)
computed from the first LSTM layer:

eq. 52  h^1_t = H(W_ih1 x_t + W_h1h1 h^1_{t-1} + W_wh1 w_{t-1} + b^1_h)
eq. 53  h^n_t = H(W_ihn x_t + W_h(n-1)hn h^(n-1)_t + W_hnhn h^n_{t-1} + W_whn w_t + b^n_h)

Layer 1 and the window depend on each other step by step, so `step` runs the
whole stack one time step at a time and `call` scans it (see StrokeModel).
"""

import keras
from keras import ops

from zoo.data.alphabet import Alphabet
from zoo.layers import mixture
from zoo.layers.lstm_stack import PeepholeLSTM
from zoo.layers.window import SoftWindow
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
        self.build_noise()
        self.built = True

    def text_onehot(self, text_ids):
        """(B, U) ids, 0 = padding -> (B, U, C) one-hot rows, zero rows for padding."""
        return ops.one_hot(ops.cast(text_ids, "int32"), self.num_chars + 1)[..., 1:]

    extra_state = ("kappa", "w")

    def zero_state(self, batch: int):
        return {**super().zero_state(batch), "kappa": ops.zeros((batch, self.window_components)), "w": ops.zeros((batch, self.num_chars))}

    def state_shapes(self):
        return {**super().state_shapes(), "kappa": ["batch", self.window_components], "w": ["batch", self.num_chars]}

    def step_weights(self):
        return {
            "lstm": [cell.fused_weights() for cell in self.cells],
            "window": self.window.param_weights(),
            "head": self.head.head_weights(),
        }

    def step(self, weights, x, state, context=None):
        """One time step: x_t (B, 3), the one-hot text ``context`` (B, U, C) -> hidden (B, N*H), state,
        the window {"phi": (B, U), "kappa": (B, K)}."""
        h, c = self.cells[0].fused_step(weights["lstm"][0], [x, state["w"]], state["h"][0], state["c"][0])  # eq. 52
        w, kappa, phi = self.window.apply(weights["window"], h, state["kappa"], context)  # eq. 46-51
        hs, cs = [h], [c]
        for cell, cw, h, c in zip(self.cells[1:], weights["lstm"][1:], state["h"][1:], state["c"][1:]):
            h, c = cell.fused_step(cw, [x, hs[-1], w], h, c)  # eq. 53
            hs.append(h)
            cs.append(c)
        return ops.concatenate(hs, axis=-1), {"h": hs, "c": cs, "kappa": kappa, "w": w}, {"phi": phi, "kappa": kappa}

    def call(self, inputs, initial_state=None, return_state=False, return_window=False, training=False):
        """(strokes (B, T, 3), text ids (B, U)) -> y_hat (B, T, 1 + 6M) [, final state] [, window {"phi": (B, T, U), "kappa": (B, T, K)}]."""
        strokes, text_ids = inputs
        state = initial_state or self.zero_state(ops.shape(strokes)[0])
        weights = self.training_weights(training)
        hidden, final, window = self.scan_steps(strokes, state, self.text_onehot(text_ids), weights=weights)
        y_hat = self.head.apply(weights["head"], hidden)  # eq. 3
        outputs = [y_hat]
        if return_state:
            outputs.append(final)
        if return_window:
            outputs.append(window)
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
