"""Weight noise, the regulariser of Graves (2013, sec. 3 and 4) and Graves (2011), applied while training only.

Mixed into a model whose weight matrices are read once per batch (outside the time loop):

- ``weight_noise`` sigma: Gaussian noise of standard deviation sigma added to every weight
  matrix, drawn afresh for every training batch;
- ``adaptive_noise``: every weight w has a learned standard deviation sigma_w; a sample
  w = mu + sigma_w * eps is used for each batch, and the description length of the
  weights, KL(Q(w) || P(w)) with the prior's mean and variance set to their optimum
  (Graves 2011, eq. 13-14), is added to the loss divided by ``train_units`` (the training
  set's symbols or lines: the loss is per symbol or per line). Evaluation uses mu.

Biases and peepholes are left alone; only matrices (rank 2) are perturbed.
"""

import math

import keras
from keras import ops


class WeightNoise:
    """``noisy_matrices(matrices, training)``: the matrices to use for this batch."""

    def init_weight_noise(self, weight_noise=0.0, adaptive_noise=False, train_units=1):
        self.weight_noise = float(weight_noise)
        self.adaptive_noise = bool(adaptive_noise)
        self.train_units = train_units  # scales the description length to one training symbol or line
        self.noise_seed = keras.random.SeedGenerator(0)
        self.sample_noise = True  # dynamic evaluation turns training noise off

    def build_weight_noise(self, shapes):
        """Adaptive noise: one learned log-sigma per weight of each matrix in ``shapes``."""
        if self.adaptive_noise:
            init = keras.initializers.Constant(math.log(0.01))
            self.log_sigma = [self.add_weight(name=f"log_sigma_{i}", shape=tuple(s), initializer=init) for i, s in enumerate(shapes)]

    def noisy_matrices(self, matrices, training):
        """``matrices`` (tensors) as this batch uses them: the means, or a noisy sample while training."""
        if not (training and self.sample_noise):
            return matrices
        if self.adaptive_noise:
            sigmas = [ops.exp(s) for s in self.log_sigma]
            self.add_loss(self.description_length(matrices, sigmas) / self.train_units)
            return [w + s * keras.random.normal(ops.shape(w), seed=self.noise_seed) for w, s in zip(matrices, sigmas)]
        if self.weight_noise:
            return [w + self.weight_noise * keras.random.normal(ops.shape(w), seed=self.noise_seed) for w in matrices]
        return matrices

    @staticmethod
    def description_length(means, sigmas):
        """KL(Q || P) in nats for Q = N(mu, sigma^2) per weight and the optimal
        Gaussian prior P (Graves 2011, eq. 13-14): mu_p = mean(mu),
        sigma_p^2 = mean(sigma^2 + (mu - mu_p)^2), which makes KL = sum log(sigma_p / sigma)."""
        mu = ops.concatenate([ops.reshape(m, (-1,)) for m in means])
        sigma = ops.concatenate([ops.reshape(s, (-1,)) for s in sigmas])
        mu_p = ops.mean(mu)
        var_p = ops.mean(ops.square(sigma) + ops.square(mu - mu_p))
        return ops.sum(0.5 * ops.log(var_p) - ops.log(sigma))

    def weight_noise_config(self) -> dict:
        return {"weight_noise": self.weight_noise, "adaptive_noise": self.adaptive_noise}
