import numpy as np
import pytest

from zoo.models.predictor import HandwritingPredictor
from zoo.render import save_drawing
from zoo.render.figures import density_image
from zoo.render.svg import offsets_to_strokes
from zoo.sampling.handwriting import predictive_params, sample_unconditional


@pytest.fixture(scope="module")
def model():
    m = HandwritingPredictor(units=8, num_layers=2, num_mixtures=3, offset_mean=(4.0, 0.0), offset_std=(10.0, 10.0))
    m.build()
    return m


def test_samples_are_reproducible_and_batched(model):
    a = sample_unconditional(model, steps=30, count=3, seed=7)
    b = sample_unconditional(model, steps=30, count=3, seed=7)
    c = sample_unconditional(model, steps=30, count=3, seed=8)
    assert a.shape == (3, 30, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert set(np.unique(a[..., 2])) <= {0.0, 1.0}
    # The samples of one batch are independent draws, not copies.
    assert not np.allclose(a[0], a[1])


def test_batch_members_match_single_draws(model):
    """Row k of a batch equals a batch of one fed the same noise row (state is per line)."""
    from zoo.sampling import driver

    noise = driver.sampling_noise(20, 2, seed=3)
    batch = sample_unconditional(model, steps=20, count=2, seed=3)
    single_noise = noise[:, 1:2]
    orig = driver.sampling_noise
    driver.sampling_noise = lambda steps, count, seed: single_noise
    try:
        single = sample_unconditional(model, steps=20, count=1, seed=3)
    finally:
        driver.sampling_noise = orig
    np.testing.assert_allclose(single[0], batch[1], atol=1e-4)


def test_high_bias_makes_samples_nearly_deterministic():
    m = HandwritingPredictor(units=8, num_layers=1, num_mixtures=3, offset_mean=(4.0, 0.0), offset_std=(10.0, 10.0))
    m.build()
    bias = np.zeros(1 + 6 * 3, np.float32)
    bias[0] = 8.0  # e_hat: pen-up almost never (the bias of eq. 61-62 leaves e alone)
    bias[1] = 1.0  # pi_hat: component 1 slightly preferred; (1 + b) makes it dominant
    m.head.dense.bias.assign(bias)
    a0 = sample_unconditional(m, steps=40, count=1, bias=0.0, seed=1)
    b0 = sample_unconditional(m, steps=40, count=1, bias=0.0, seed=2)
    a = sample_unconditional(m, steps=40, count=1, bias=10.0, seed=1)
    b = sample_unconditional(m, steps=40, count=1, bias=10.0, seed=2)
    spread0 = np.abs(a0[..., :2] - b0[..., :2]).mean()
    spread = np.abs(a[..., :2] - b[..., :2]).mean()
    assert spread < 0.01 * spread0, (spread, spread0)


def test_bad_sampling_arguments(model):
    with pytest.raises(ValueError, match="steps and count must be positive"):
        sample_unconditional(model, steps=0)
    for bias in (float("nan"), -0.5, float("inf")):
        with pytest.raises(ValueError, match="bias must be a finite number >= 0"):
            sample_unconditional(model, steps=5, bias=bias)


def test_strokes_split_at_end_of_stroke():
    off = np.array([[0, 0, 0], [1, 0, 1], [5, 5, 0], [1, 0, 0], [1, 1, 1]], float)
    strokes = offsets_to_strokes(off)
    assert [len(s) for s in strokes] == [2, 3]
    np.testing.assert_allclose(strokes[1], [[6, 5], [7, 5], [8, 6]])


def test_unknown_picture_format(tmp_path):
    with pytest.raises(ValueError, match="FILE.svg or FILE.png"):
        save_drawing(np.zeros((3, 3)), str(tmp_path / "x.jpg"))


def test_density_image_integrates_to_the_number_of_steps(model):
    rng = np.random.default_rng(0)
    line = np.concatenate([rng.normal(10, 3, (40, 2)), np.zeros((40, 1))], 1).astype("float32")
    line[0, :2] = 0
    params = predictive_params(model, line)
    assert params["pi"].shape == (39, 3)
    points = np.cumsum(line[:, :2], 0)[:-1]
    image, _, _ = density_image(points, params, units_per_pixel=1.0, margin=400.0)
    # Each step's density is a probability distribution over the plane.
    assert image.sum() == pytest.approx(39, rel=0.05)
