"""Truncated backprop through time with the state carried between batches (Graves sec. 3.2).

``CarriedState`` wraps a model that takes and returns its recurrent state
(``model(x, initial_state=..., return_state=True)``). It keeps the last state
of every stream in non-trainable variables, so batch i+1 of a `TextStreams`
starts where batch i ended, while gradients stop at the batch boundary. The
batch's ``reset`` flags (B, 1) zero the state at the start of the corpus and
every N sequences. Assigning variables inside ``call`` is how Keras layers keep
state on every backend (JAX's stateless training step included), and since the
state lives in the checkpoint, a resumed run continues with it.

Evaluation batches (``training=False``) start from zero and leave the carried
state alone, so validation inside ``fit`` does not disturb the training streams.

Across devices (zoo/distribute.py) the state is passed to the network explicitly, never
held in ``stateful`` layers: the variables hold one row per stream of the *global* batch,
whichever devices train it. On JAX the step sees the global batch, so nothing changes; under
TensorFlow's MirroredStrategy each replica reads its own streams' rows, and the new rows of
all replicas are gathered into every copy of the variables. A checkpoint therefore holds the
same state whatever the number of devices that wrote it, and resumes on any number.

The loss is the mean cross-entropy per symbol of the batch, computed here rather than by a
compiled Keras loss: under MirroredStrategy Keras' losses return each replica's 1 / N share
of it, which would reach the LSTM derivative clip (sec. 3.1) N times too small.
"""

import keras
from keras import ops

from zoo import distribute


@keras.saving.register_keras_serializable("zoo")
class CarriedState(keras.Model):
    def __init__(self, network, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.batch_size = batch_size

    def build(self, input_shape=None):
        if self.built:
            return
        self.network.build()
        self.carried = []
        for n, (h, c) in enumerate(self.network.zero_state(self.batch_size)):
            # Every replica writes the same gathered rows; TensorFlow takes the first's (JAX ignores this).
            pair = [
                self.add_weight(name=f"{k}_{n + 1}", shape=ops.shape(h), initializer="zeros", trainable=False, aggregation="only_first_replica")
                for k in "hc"
            ]
            self.carried.append(pair)
        self.built = True

    def call(self, inputs, training=False):
        ids, reset = inputs
        if not training:
            return self.network(ids, training=False)
        keep = 1.0 - ops.cast(reset, "float32")
        rows = ops.shape(ids)[0]  # this replica's streams (all of them on one device and on JAX)
        state = [(distribute.replica_rows(h, rows) * keep, distribute.replica_rows(c, rows) * keep) for h, c in self.carried]
        logits, final = self.network(ids, initial_state=state, return_state=True, training=True)
        for (h_var, c_var), (h, c) in zip(self.carried, final):
            h_var.assign(distribute.gather_rows(ops.stop_gradient(h)))
            c_var.assign(distribute.gather_rows(ops.stop_gradient(c)))
        return logits

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean cross-entropy in nats per symbol of the batch's B x T symbols (eq. 13 / (B T)), plus any
        added loss (adaptive weight noise's description length); see the module's docstring. A loss given
        to ``compile`` is not used (earlier runs compiled SparseCategoricalCrossentropy, the same mean)."""
        loss = ops.mean(keras.losses.sparse_categorical_crossentropy(y, y_pred, from_logits=True))
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "network": keras.saving.serialize_keras_object(self.network),
            "batch_size": self.batch_size,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)
