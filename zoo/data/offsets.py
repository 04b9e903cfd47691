"""The offset normalisation that travels with a handwriting model (numpy only).

Inputs are pen offsets (dx, dy, eos); the network sees ((dx, dy) - mean) / std
with the training set's mean and standard deviation, eos unchanged.
"""

from __future__ import annotations

import numpy as np


def normalize(offsets, mean, std) -> np.ndarray:
    """Raw pen offsets (..., 3) -> ((dx, dy) - mean) / std, eos unchanged."""
    out = np.array(offsets, dtype=np.float32, copy=True)
    out[..., :2] = (out[..., :2] - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return out


def denormalize(offsets, mean, std) -> np.ndarray:
    out = np.array(offsets, dtype=np.float32, copy=True)
    out[..., :2] = out[..., :2] * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
    return out


def start_input(count: int, mean, std) -> np.ndarray:
    """The first input of a line: a zero offset with the pen down, normalised: (count, 3)."""
    return np.repeat(normalize(np.zeros((1, 3), np.float32), mean, std), count, 0)


class NormalizedOffsets:
    """Mixed into the models whose config carries ``offset_mean`` and ``offset_std`` (handwriting networks, the recognizer)."""

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        return normalize(raw, self.offset_mean, self.offset_std)

    def denormalize(self, normalized: np.ndarray) -> np.ndarray:
        return denormalize(normalized, self.offset_mean, self.offset_std)
