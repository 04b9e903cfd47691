"""What every handwriting model shares: the offset normalisation, the loss, and
the shape of its one time step.

Each model defines one pure step in ``keras.ops``::

    step(weights, x_t, state, context) -> (hidden_t, state, window or None)

``weights`` come from ``step_weights()`` (read once, outside any time loop);
``state`` is a dict {"h": [per layer], "c": [per layer], ...}; ``context`` is
what the step reads at every time (the synthesizer's one-hot text). ``call``
scans that step over a sequence for training and evaluation; `sample_step`
adds the output layer (eq. 3) and one draw from the mixture (eq. 18-25, bias
61-62); the Keras sampler compiles it and ``export/graphs.py`` wraps the same
function for ONNX and SavedModel, so every engine runs the same maths.

Inputs are pen offsets (dx, dy, eos) normalised by the training set's mean and
standard deviation; that normalisation is part of the model's config, so every
consumer (sampler, evaluator, exporter) reads it from the model.

Training may perturb the weight matrices (``weight_noise`` or ``adaptive_noise``,
zoo/layers/weight_noise.py: Graves used adaptive noise for his best handwriting
figures, sec. 4-5); `training_weights` gives the step the batch's sample, and
sampling, evaluation and export always use the means.
"""

import keras
from keras import ops

from zoo import backend
from zoo.data import offsets
from zoo.layers import mixture
from zoo.layers.weight_noise import WeightNoise


class StrokeModel(offsets.NormalizedOffsets, WeightNoise, keras.Model):
    """Base of the prediction and synthesis networks: y_hat (B, T, 1 + 6M) over pen offsets."""

    # Names of the state's parts besides the per-layer "h" and "c" (the synthesizer adds its window).
    extra_state: tuple = ()

    def __init__(self, num_mixtures=20, offset_mean=(0.0, 0.0), offset_std=(1.0, 1.0), weight_noise=0.0, adaptive_noise=False, train_lines=1, **kwargs):
        super().__init__(**kwargs)
        self.num_mixtures = num_mixtures
        self.offset_mean = tuple(float(v) for v in offset_mean)
        self.offset_std = tuple(float(v) for v in offset_std)
        self.train_lines = train_lines
        self.init_weight_noise(weight_noise, adaptive_noise, train_units=train_lines)  # the loss is per line

    # ------------------------------------------------------------ weight noise (training only)

    @staticmethod
    def _matrices(weights) -> list:
        """The weight matrices among `step_weights()`: each layer's fused [W_x; W_h], the
        window's W_h1p (eq. 48), the output layer's W_hy (eq. 3); not biases or peepholes."""
        return [w[0] for w in weights["lstm"]] + [weights[k][0] for k in ("window", "head") if k in weights]

    def build_noise(self):
        """Called at the end of `build`: adaptive noise's log-sigmas, one per weight of each matrix."""
        self.build_weight_noise([m.shape for m in self._matrices(self.step_weights())])

    def training_weights(self, training=False) -> dict:
        """`step_weights()` for one batch: with noise on the matrices while training (if any is set)."""
        weights = self.step_weights()
        if not (training and (self.weight_noise or self.adaptive_noise)):
            return weights
        noisy = iter(self.noisy_matrices(self._matrices(weights), training))
        out = {**weights, "lstm": [(next(noisy), *w[1:]) for w in weights["lstm"]]}
        for key in ("window", "head"):
            if key in weights:
                out[key] = (next(noisy), *weights[key][1:])
        return out

    # ------------------------------------------------------------ the step and its scan
    # Each subclass defines step_weights() -> {"lstm": [fused per layer], "head": ..., ...} and
    # step(weights, x_t (B, 3), state, context) -> (hidden h^1..h^N (B, N*H), new state, window or None).

    def sample_step(self, weights, x, state, noise, bias, context=None):
        """One sampling step: the step, eq. 3, and a point drawn with ``noise`` (B, 4) at ``bias`` (eq. 61-62).

        Returns (point (B, 3), y_hat (B, 1+6M), new state, window or None)."""
        hidden, state, window = self.step(weights, x, state, context)
        y_hat = self.head.apply(weights["head"], hidden)  # eq. 3
        return mixture.sample_point(y_hat, noise, self.num_mixtures, bias), y_hat, state, window

    def scan_steps(self, strokes, state, context=None, weights=None):
        """`step` over a whole sequence (B, T, 3): hidden (B, T, N*H), final state, window (each (B, T, ...)) or None.
        ``weights``: `training_weights` (default: `step_weights()`, the means)."""
        weights = weights or self.step_weights()

        def body(carry, x_t):
            hidden, carry, window = self.step(weights, x_t, carry, context)
            return carry, (hidden, window or {})

        final, (hidden, window) = backend.scan(body, state, ops.transpose(strokes, (1, 0, 2)))
        batch_major = {k: ops.transpose(v, (1, 0, 2)) for k, v in window.items()}
        return ops.transpose(hidden, (1, 0, 2)), final, batch_major or None

    def zero_state(self, batch: int) -> dict:
        z = ops.zeros((batch, self.units))
        return {"h": [z] * self.num_layers, "c": [z] * self.num_layers}

    def state_shapes(self) -> dict:
        """name -> shape with "batch" for the batch axis; "h" and "c" stack the layers: (N, batch, H)."""
        return {"h": [self.num_layers, "batch", self.units], "c": [self.num_layers, "batch", self.units]}

    def stack_state(self, state) -> dict:
        """The step's state -> the flat layout of the engines and exported graphs (h, c as (N, B, H))."""
        return {"h": ops.stack(state["h"]), "c": ops.stack(state["c"]), **{k: state[k] for k in self.extra_state}}

    def unstack_state(self, flat) -> dict:
        return {
            "h": [flat["h"][n] for n in range(self.num_layers)],
            "c": [flat["c"][n] for n in range(self.num_layers)],
            **{k: flat[k] for k in self.extra_state},
        }

    # ------------------------------------------------------------ training

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean over lines of eq. 26 (nats per line); y = (dx, dy, eos, mask)."""
        nll = mixture.sequence_nll(y_pred, y[..., :3], y[..., 3], self.num_mixtures)
        loss = ops.mean(nll)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "num_mixtures": self.num_mixtures,
            "offset_mean": list(self.offset_mean),
            "offset_std": list(self.offset_std),
            **self.weight_noise_config(),
            "train_lines": self.train_lines,
        }
