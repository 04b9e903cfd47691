"""Handwriting prediction network (Graves 2013, sec. 4): x_t -> Pr(x_{t+1}).

Inputs are pen offsets (dx, dy, eos) normalised by the training set's mean and
standard deviation; that normalisation is part of the model's config, so every
consumer (sampler, evaluator, exporter) reads it from the model.
"""

import numpy as np
import keras
from keras import ops

from zoo.layers import mixture
from zoo.layers.lstm_stack import SkipLSTMStack


@keras.saving.register_keras_serializable("zoo")
class HandwritingPredictor(keras.Model):
    """Skip-connected deep LSTM (eq. 1-3) with a bivariate mixture density output (eq. 15-26)."""

    def __init__(
        self,
        units=400,
        num_layers=3,
        num_mixtures=20,
        lstm_clip=10.0,
        output_clip=100.0,
        offset_mean=(0.0, 0.0),
        offset_std=(1.0, 1.0),
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = units
        self.num_layers = num_layers
        self.num_mixtures = num_mixtures
        self.lstm_clip = lstm_clip
        self.output_clip = output_clip
        self.offset_mean = tuple(float(v) for v in offset_mean)
        self.offset_std = tuple(float(v) for v in offset_std)
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

    # ------------------------------------------------------------ loss

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean over lines of eq. 26 (nats per line); y = (dx, dy, eos, mask)."""
        nll = mixture.sequence_nll(y_pred, y[..., :3], y[..., 3], self.num_mixtures)
        loss = ops.mean(nll)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    # ------------------------------------------------------------ normalisation

    def normalize(self, offsets: np.ndarray) -> np.ndarray:
        out = np.array(offsets, dtype=np.float32, copy=True)
        out[..., :2] = (out[..., :2] - np.asarray(self.offset_mean, np.float32)) / np.asarray(self.offset_std, np.float32)
        return out

    def denormalize(self, offsets: np.ndarray) -> np.ndarray:
        out = np.array(offsets, dtype=np.float32, copy=True)
        out[..., :2] = out[..., :2] * np.asarray(self.offset_std, np.float32) + np.asarray(self.offset_mean, np.float32)
        return out

    def start_input(self, batch: int) -> np.ndarray:
        """The first input of a line: a zero offset with the pen down, normalised."""
        return self.normalize(np.zeros((batch, 1, 3), np.float32))

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "num_layers": self.num_layers,
            "num_mixtures": self.num_mixtures,
            "lstm_clip": self.lstm_clip,
            "output_clip": self.output_clip,
            "offset_mean": list(self.offset_mean),
            "offset_std": list(self.offset_std),
        }
