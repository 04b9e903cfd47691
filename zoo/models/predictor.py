"""Handwriting prediction network (Graves 2013, sec. 4): x_t -> Pr(x_{t+1})."""

import keras
from keras import ops

from zoo.layers import mixture
from zoo.layers.lstm_stack import SkipLSTMStack
from zoo.models.stroke_model import StrokeModel


@keras.saving.register_keras_serializable("zoo")
class HandwritingPredictor(StrokeModel):
    """Skip-connected deep LSTM (eq. 1-3) with a bivariate mixture density output (eq. 15-26)."""

    def __init__(self, units=400, num_layers=3, num_mixtures=20, lstm_clip=10.0, output_clip=100.0, **kwargs):
        super().__init__(num_mixtures=num_mixtures, **kwargs)
        self.units = units
        self.num_layers = num_layers
        self.lstm_clip = lstm_clip
        self.output_clip = output_clip
        # The stack holds the cells (and names their weights); the time loop is `step`'s.
        self.lstm = SkipLSTMStack(units, num_layers, clip=lstm_clip, name="lstm_stack")
        self.head = mixture.MixtureDensityHead(num_mixtures, clip=output_clip, name="mixture")

    def build(self, input_shape=(None, None, 3)):
        if self.built:
            return
        self.lstm.build(input_shape)
        self.head.build((None, None, self.units * self.num_layers))
        self.build_noise()
        self.built = True

    def step_weights(self):
        return {"lstm": [cell.fused_weights() for cell in self.lstm.cells], "head": self.head.head_weights()}

    def step(self, weights, x, state, context=None):
        """eq. 1-2 for one time step: x_t (B, 3) -> hidden (B, N*H), new state."""
        hs, cs = [], []
        for cell, w, h, c in zip(self.lstm.cells, weights["lstm"], state["h"], state["c"]):
            h, c = cell.fused_step(w, [x] if not hs else [x, hs[-1]], h, c)  # eq. 1 / eq. 2
            hs.append(h)
            cs.append(c)
        return ops.concatenate(hs, axis=-1), {"h": hs, "c": cs}, None

    def call(self, inputs, initial_state=None, return_state=False, training=False):
        """inputs (B, T, 3) normalised offsets -> y_hat (B, T, 1 + 6M) (and the final state)."""
        state = initial_state or self.zero_state(ops.shape(inputs)[0])
        weights = self.training_weights(training)
        hidden, state, _ = self.scan_steps(inputs, state, weights=weights)
        y_hat = self.head.apply(weights["head"], hidden)  # eq. 3
        return (y_hat, state) if return_state else y_hat

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "num_layers": self.num_layers,
            "lstm_clip": self.lstm_clip,
            "output_clip": self.output_clip,
        }
