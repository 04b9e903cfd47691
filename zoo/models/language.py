"""Text prediction network (Graves 2013, sec. 3): one symbol at a time.

A deep LSTM with skip connections (eq. 1-3, the same PeepholeLSTM cells as the
handwriting models) over one-hot symbols, and a softmax output:

eq. 1   h^1_t = H(W_ih1 x_t + W_h1h1 h^1_{t-1} + b^1_h)
eq. 2   h^n_t = H(W_ihn x_t + W_h(n-1)hn h^(n-1)_t + W_hnhn h^n_{t-1} + b^n_h)
eq. 3   y_hat_t = b_y + sum_n W_hny h^n_t
eq. 12  Pr(x_{t+1} = k | y_t) = exp(y_hat^k_t) / sum_k' exp(y_hat^k'_t)
eq. 13  L(x) = - sum_t log y^{x_{t+1}}_t

x_t is one-hot, so W_ihn x_t is a row of W_ihn: the model looks rows up
instead of multiplying by a 10k-wide one-hot vector (same numbers).

Regularisers of sec. 3 / Graves (2011), applied while training only
(zoo/layers/weight_noise.py): fixed ``weight_noise`` on every weight matrix, or
``adaptive_noise`` with its description length added per training symbol.

The training loss is the mean cross-entropy per symbol (Keras' default
reduction over the B x T symbols of a batch), reported in nats per symbol.
The LSTM derivative clip (sec. 3.1: [-1, 1]) acts on the derivatives of each
sequence's summed log-loss, eq. 13, as Graves clipped them: `call` tells the
clip that the loss averages over T steps as well as B sequences.
"""

import keras
from keras import ops

from zoo import backend
from zoo.data.text import Vocabulary
from zoo.layers.gradient_clip import loss_averaged_over_steps
from zoo.layers.lstm_stack import PeepholeLSTM
from zoo.layers.weight_noise import WeightNoise


@keras.saving.register_keras_serializable("zoo")
class LanguageModel(WeightNoise, keras.Model):
    """symbol ids (B, T) -> logits y_hat (B, T, V) over the next symbol."""

    def __init__(
        self,
        vocabulary,
        units=1000,
        num_layers=1,
        lstm_clip=1.0,
        weight_noise=0.0,
        adaptive_noise=False,
        train_symbols=1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary = vocabulary if isinstance(vocabulary, Vocabulary) else Vocabulary.from_config(vocabulary)
        self.units = units
        self.num_layers = num_layers
        self.lstm_clip = lstm_clip  # sec. 3.1: LSTM derivatives of each sequence's log-loss clipped to [-1, 1]
        self.train_symbols = train_symbols
        self.init_weight_noise(weight_noise, adaptive_noise, train_units=train_symbols)
        self.cells = [PeepholeLSTM(units, clip=lstm_clip, name=f"lstm_{n + 1}") for n in range(num_layers)]

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def build(self, input_shape=None):
        if self.built:
            return
        v, n = self.vocab_size, self.units
        for i, cell in enumerate(self.cells):
            cell.build((None, None, v if i == 0 else v + n))  # eq. 1 / eq. 2
        self.output_kernel = self.add_weight(name="output_kernel", shape=(n * self.num_layers, v), initializer="glorot_uniform")
        self.output_bias = self.add_weight(name="output_bias", shape=(v,), initializer="zeros")
        self.build_weight_noise([w.shape for w in self.noisy_variables()])
        self.built = True

    def noisy_variables(self):
        """The weight matrices that noise perturbs: input, recurrent and output weights."""
        out = []
        for cell in self.cells:
            out += [cell.kernel, cell.recurrent_kernel]
        return out + [self.output_kernel]

    def sampled_weights(self, training):
        """The weight matrices for this batch: the means, or a noisy sample while training."""
        return self.noisy_matrices([ops.convert_to_tensor(w) for w in self.noisy_variables()], training)

    def zero_state(self, batch: int):
        z = ops.zeros((batch, self.units))
        return [(z, z) for _ in self.cells]

    def call(self, ids, initial_state=None, return_state=False, training=False):
        """ids (B, T) -> logits (B, T, V): `step` scanned over the sequence, with training's noisy weights."""
        ids = ops.cast(ids, "int32")
        state = initial_state or self.zero_state(ops.shape(ids)[0])
        weights = self.step_weights(self.sampled_weights(training))

        def body(state, ids_t):
            logits, state = self.step(weights, ids_t, state)
            return state, logits

        with loss_averaged_over_steps(ops.shape(ids)[1]):  # clip per sequence, not per symbol
            final, logits = backend.scan(body, list(state), ops.transpose(ids))
        logits = ops.transpose(logits, (1, 0, 2))
        return (logits, final) if return_state else logits

    # ------------------------------------------------------------ one step (sampling, export)

    def step_weights(self, matrices=None) -> dict:
        """The weights of `step` as tensors, read once outside a time loop: per layer the one-hot
        rows W_ihn and the fused rest ([W_h(n-1)hn; W_hnhn], b, peepholes), and eq. 3's output.
        ``matrices``: the weight matrices to use (`sampled_weights`: noisy while training); default the means."""
        matrices = matrices or [ops.convert_to_tensor(w) for w in self.noisy_variables()]
        v, lstm = self.vocab_size, []
        for i, cell in enumerate(self.cells):
            kernel, recurrent = matrices[2 * i], matrices[2 * i + 1]
            fused = (ops.concatenate([kernel[v:], recurrent], axis=0), ops.convert_to_tensor(cell.bias), ops.convert_to_tensor(cell.peephole))
            lstm.append((kernel[:v], fused))
        return {"lstm": lstm, "output": (matrices[-1], ops.convert_to_tensor(self.output_bias))}

    def step(self, weights, ids, state):
        """eq. 1-3 for one symbol: ids (B,) + state [(h, c) per layer] -> logits (B, V), new state.
        `call` scans it; the sampling loops (zoo.sampling.loops) and the exported graphs run it."""
        new = []
        for cell, (rows, fused), (h, c) in zip(self.cells, weights["lstm"], state):
            below = [new[-1][0]] if new else []  # eq. 2: h^(n-1)_t
            new.append(cell.fused_step(fused, below, h, c, projected=ops.take(rows, ids, axis=0)))  # W_ihn x_t for one-hot x_t
        kernel, bias = weights["output"]
        return ops.matmul(ops.concatenate([h for h, _ in new], axis=-1), kernel) + bias, new  # eq. 3

    def state_shapes(self) -> dict:
        return {"h": [self.num_layers, "batch", self.units], "c": [self.num_layers, "batch", self.units]}

    def stack_state(self, state) -> dict:
        """[(h, c) per layer] -> the engines' flat layout {"h": (N, B, H), "c": (N, B, H)}."""
        return {"h": ops.stack([h for h, _ in state]), "c": ops.stack([c for _, c in state])}

    def unstack_state(self, flat) -> list:
        return [(flat["h"][n], flat["c"][n]) for n in range(self.num_layers)]

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": self.vocabulary.get_config(),
            "units": self.units,
            "num_layers": self.num_layers,
            "lstm_clip": self.lstm_clip,
            **self.weight_noise_config(),
            "train_symbols": self.train_symbols,
        }
