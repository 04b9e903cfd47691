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
"""

import keras
from keras import ops


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
            pair = [self.add_weight(name=f"{k}_{n + 1}", shape=ops.shape(h), initializer="zeros", trainable=False) for k in "hc"]
            self.carried.append(pair)
        self.built = True

    def call(self, inputs, training=False):
        ids, reset = inputs
        if not training:
            return self.network(ids, training=False)
        keep = 1.0 - ops.cast(reset, "float32")
        state = [(h * keep, c * keep) for h, c in self.carried]
        logits, final = self.network(ids, initial_state=state, return_state=True, training=True)
        for (h_var, c_var), (h, c) in zip(self.carried, final):
            h_var.assign(ops.stop_gradient(h))
            c_var.assign(ops.stop_gradient(c))
        return logits

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
