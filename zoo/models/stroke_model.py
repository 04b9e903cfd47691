"""What every handwriting model shares: the offset normalisation and the loss.

Inputs are pen offsets (dx, dy, eos) normalised by the training set's mean and
standard deviation; that normalisation is part of the model's config, so every
consumer (sampler, evaluator, exporter) reads it from the model.
"""

import numpy as np
import keras
from keras import ops

from zoo.layers import mixture
from zoo.sampling import common


class StrokeModel(keras.Model):
    """Base of the prediction and synthesis networks: y_hat (B, T, 1 + 6M) over pen offsets."""

    def __init__(self, num_mixtures=20, offset_mean=(0.0, 0.0), offset_std=(1.0, 1.0), **kwargs):
        super().__init__(**kwargs)
        self.num_mixtures = num_mixtures
        self.offset_mean = tuple(float(v) for v in offset_mean)
        self.offset_std = tuple(float(v) for v in offset_std)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean over lines of eq. 26 (nats per line); y = (dx, dy, eos, mask)."""
        nll = mixture.sequence_nll(y_pred, y[..., :3], y[..., 3], self.num_mixtures)
        loss = ops.mean(nll)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    def normalize(self, offsets: np.ndarray) -> np.ndarray:
        return common.normalize(offsets, self.offset_mean, self.offset_std)

    def denormalize(self, offsets: np.ndarray) -> np.ndarray:
        return common.denormalize(offsets, self.offset_mean, self.offset_std)

    def start_input(self, batch: int) -> np.ndarray:
        """The first input of a line: a zero offset with the pen down, normalised."""
        return self.normalize(np.zeros((batch, 1, 3), np.float32))

    def get_config(self):
        return {
            **super().get_config(),
            "num_mixtures": self.num_mixtures,
            "offset_mean": list(self.offset_mean),
            "offset_std": list(self.offset_std),
        }
