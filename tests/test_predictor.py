import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from zoo.layers.gradient_clip import clip_gradient
from zoo.layers.lstm_stack import PeepholeLSTM
from zoo.models.predictor import HandwritingPredictor
from zoo.presets import from_preset, save_preset
from zoo.training.graves_rmsprop import GravesRMSprop


def small_model(**kw):
    model = HandwritingPredictor(units=16, num_layers=2, num_mixtures=3, offset_mean=(2.0, 0.5), offset_std=(10.0, 8.0), **kw)
    model.build()
    return model


def batch(rng, b=2, t=9):
    x = rng.normal(size=(b, t, 3)).astype("float32")
    x[..., 2] = rng.integers(0, 2, (b, t))
    y = np.concatenate([rng.normal(size=(b, t, 2)), rng.integers(0, 2, (b, t, 1)), np.ones((b, t, 1))], -1).astype("float32")
    return x, y


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_lstm_step_matches_equations_7_to_11():
    rng = np.random.default_rng(0)
    cell = PeepholeLSTM(4)
    cell.build((None, None, 3))
    cell.peephole.assign(rng.normal(size=(3, 4)).astype("float32"))
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    hs, _ = cell(x)
    W, U, b, P = (ops.convert_to_numpy(v) for v in (cell.kernel, cell.recurrent_kernel, cell.bias, cell.peephole))
    h = c = np.zeros((2, 4))
    for t in range(5):
        z = x[:, t] @ W + h @ U + b
        zi, zf, zc, zo = np.split(z, 4, axis=-1)
        i = sigmoid(zi + P[0] * c)  # eq. 7
        f = sigmoid(zf + P[1] * c)  # eq. 8
        c = f * c + i * np.tanh(zc)  # eq. 9
        o = sigmoid(zo + P[2] * c)  # eq. 10
        h = o * np.tanh(c)  # eq. 11
        np.testing.assert_allclose(ops.convert_to_numpy(hs)[:, t], h, atol=1e-5)


def test_carried_state_equals_one_pass():
    model = small_model()
    x, _ = batch(np.random.default_rng(1), t=10)
    whole = ops.convert_to_numpy(model(x))
    first, state = model(x[:, :4], return_state=True)
    second = model(x[:, 4:], initial_state=state)
    np.testing.assert_allclose(np.concatenate([ops.convert_to_numpy(first), ops.convert_to_numpy(second)], 1), whole, atol=1e-5)


def test_skip_connections_shape_the_weights():
    model = small_model()
    lstm1, lstm2 = model.lstm.cells
    assert lstm1.kernel.shape == (3, 64)  # eq. 1: input only
    assert lstm2.kernel.shape == (3 + 16, 64)  # eq. 2: input and the layer below
    assert model.head.dense.kernel.shape == (2 * 16, 1 + 6 * 3)  # eq. 3: every layer to the output


def test_clip_gradient_bounds_each_lines_derivative():
    x = tf.constant(np.ones((4, 3), np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = clip_gradient(x, 10.0)
        # mean over 4 lines of a loss whose per-line derivative is 1000 or 2
        loss = tf.reduce_mean(tf.reduce_sum(y * tf.constant([[1000.0], [2.0], [-1000.0], [0.5]]), axis=1))
    g = tape.gradient(loss, x).numpy()
    np.testing.assert_allclose(g * 4, [[10] * 3, [2] * 3, [-10] * 3, [0.5] * 3], rtol=1e-6)
    np.testing.assert_array_equal(y.numpy(), x.numpy())  # identity forwards


def test_gradients_are_finite_and_clipped_on_extreme_inputs():
    model = small_model()
    rng = np.random.default_rng(2)
    x, y = batch(rng)
    y[..., :2] *= 1e3  # absurd targets: enormous raw derivatives
    with tf.GradientTape() as tape:
        y_hat = model(x)
        loss = model.compute_loss(y=y, y_pred=y_hat)
    grads = tape.gradient(loss, model.trainable_variables)
    assert np.isfinite(float(loss))
    for v, g in zip(model.trainable_variables, grads):
        g = ops.convert_to_numpy(g)
        assert np.all(np.isfinite(g)), v.path
    # The output layer's bias gradient is the mean over lines and steps of
    # dL/dy_hat, each clipped to [-100, 100] per line, so it sums to at most 100 * T.
    bias_grad = ops.convert_to_numpy(grads[[v.path for v in model.trainable_variables].index(model.head.dense.bias.path)])
    assert np.abs(bias_grad).max() <= 100 * x.shape[1] + 1e-3


def test_graves_rmsprop_matches_equations_38_to_45():
    w = keras.Variable(np.array([1.0, -2.0, 0.5], np.float32))
    opt = GravesRMSprop(learning_rate=1e-2)
    grads = [np.array([0.3, -1.0, 2.0], np.float32), np.array([0.1, 0.5, -1.5], np.float32), np.array([-0.2, 0.2, 0.0], np.float32)]
    n = g = d = np.zeros(3)
    ref = np.array([1.0, -2.0, 0.5])
    for eps in grads:
        opt.apply_gradients([(ops.convert_to_tensor(eps), w)])
        n = 0.95 * n + 0.05 * eps**2
        g = 0.95 * g + 0.05 * eps
        d = 0.9 * d - 1e-2 * eps / np.sqrt(n - g**2 + 1e-4)
        ref = ref + d
    np.testing.assert_allclose(ops.convert_to_numpy(w), ref, rtol=1e-5, atol=1e-6)


def test_keras_file_round_trip(tmp_path):
    model = small_model()
    x, y = batch(np.random.default_rng(3))
    model.compile(optimizer=GravesRMSprop())
    model.fit(x, y, epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    assert again.get_config() == model.get_config()
    np.testing.assert_allclose(ops.convert_to_numpy(again(x)), ops.convert_to_numpy(model(x)), atol=1e-6)


def test_preset_round_trip(tmp_path):
    model = small_model()
    x, _ = batch(np.random.default_rng(4))
    folder = str(tmp_path / "preset")
    save_preset(model, folder, {"note": "test"}, "# card\n")
    assert sorted(os.listdir(folder)) == ["README.md", "config.json", "metadata.json", "model.weights.h5"]
    again = from_preset(folder)
    assert again.offset_mean == (2.0, 0.5) and again.offset_std == (10.0, 8.0)
    np.testing.assert_allclose(ops.convert_to_numpy(again(x)), ops.convert_to_numpy(model(x)), atol=1e-6)


def test_unknown_preset_lists_the_shipped_ones():
    with pytest.raises(FileNotFoundError, match="no preset 'nope'"):
        from_preset("nope")


def test_normalisation_round_trip():
    model = small_model()
    off = np.array([[[12.0, 8.5, 1.0]]], np.float32)
    np.testing.assert_allclose(model.normalize(off), [[[1.0, 1.0, 1.0]]])
    np.testing.assert_allclose(model.denormalize(model.normalize(off)), off)
