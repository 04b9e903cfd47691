"""Handwriting prediction network (Graves 2013, sec. 4): x_t -> Pr(x_{t+1})."""

import keras

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
        self.lstm = SkipLSTMStack(units, num_layers, clip=lstm_clip, name="lstm_stack")
        self.head = mixture.MixtureDensityHead(num_mixtures, clip=output_clip, name="mixture")

    def build(self, input_shape=(None, None, 3)):
        if self.built:
            return
        self.lstm.build(input_shape)
        self.head.build((None, None, self.units * self.num_layers))
        self.built = True

    def call(self, inputs, initial_state=None, return_state=False):
        """inputs (B, T, 3) normalised offsets -> y_hat (B, T, 1 + 6M)."""
        hidden, state = self.lstm(inputs, initial_state=initial_state)
        y_hat = self.head(hidden)
        return (y_hat, state) if return_state else y_hat

    def zero_state(self, batch: int):
        return self.lstm.zero_state(batch)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "num_layers": self.num_layers,
            "lstm_clip": self.lstm_clip,
            "output_clip": self.output_clip,
        }
