"""Graves' RMSProp with momentum (Graves 2013, eq. 38-45) as a Keras optimizer.

eq. 39  n_i = aleph n_i + (1 - aleph) eps_i^2
eq. 40  g_i = aleph g_i + (1 - aleph) eps_i
eq. 41  Delta_i = beth Delta_i - gimel eps_i / sqrt(n_i - g_i^2 + daleth)
eq. 42  w_i = w_i + Delta_i

with eps_i = dL/dw_i, aleph = 0.95, beth = 0.9, gimel (learning rate) = 1e-4,
daleth = 1e-4. Unlike Keras' RMSprop the running mean g_i is subtracted, so the
step is scaled by an estimate of the gradient's standard deviation.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable("zoo")
class GravesRMSprop(keras.optimizers.Optimizer):
    def __init__(self, learning_rate=1e-4, aleph=0.95, beth=0.9, daleth=1e-4, name="graves_rmsprop", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.aleph = aleph
        self.beth = beth
        self.daleth = daleth

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._n = self.add_optimizer_variables(var_list, "n")
        self._g = self.add_optimizer_variables(var_list, "g")
        self._delta = self.add_optimizer_variables(var_list, "delta")

    def update_step(self, gradient, variable, learning_rate):
        i = self._get_variable_index(variable)
        n, g, delta = self._n[i], self._g[i], self._delta[i]
        lr = ops.cast(learning_rate, variable.dtype)
        eps = ops.cast(gradient, variable.dtype)
        self.assign(n, self.aleph * n + (1.0 - self.aleph) * ops.square(eps))  # eq. 39
        self.assign(g, self.aleph * g + (1.0 - self.aleph) * eps)  # eq. 40
        # max(.., 0) guards the float32 rounding of n - g^2 (>= 0 in exact arithmetic).
        denom = ops.sqrt(ops.maximum(n - ops.square(g), 0.0) + self.daleth)
        self.assign(delta, self.beth * delta - lr * eps / denom)  # eq. 41
        self.assign_add(variable, delta)  # eq. 42

    def correct_for_zero_start(self, steps: int) -> None:
        """Divide n and g by 1 - aleph^steps, as Adam corrects its moments: after ``steps`` updates from
        zero they are then weighted means of the gradients seen, not sums still growing to their size
        (used after steps at learning rate 0: zoo.training.trainer.warm_up_optimizer)."""
        scale = 1.0 / (1.0 - self.aleph**steps)
        for n, g in zip(self._n, self._g):
            n.assign(n * scale)
            g.assign(g * scale)

    def get_config(self):
        return {**super().get_config(), "aleph": self.aleph, "beth": self.beth, "daleth": self.daleth}
