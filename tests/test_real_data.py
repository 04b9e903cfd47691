"""Tests on the real IAM-OnDB copy in $ZOO_DATA_DIR (skipped when it is unset)."""

import keras
import numpy as np
import pytest

from conftest import real_data_dir, requires_data

pytestmark = requires_data


@pytest.fixture(scope="module")
def real_data():
    from zoo.data.cache import load_handwriting

    return load_handwriting(real_data_dir(), progress=False)


def test_line_counts_per_official_split(real_data):
    report = real_data.report
    # The copy holds 10,677 line files; 8 have no transcription line in their form's CSR section.
    assert report["xml_files"] == 10677
    assert report["missing_transcription"] == 8
    assert report["corrupt_files"] == 0
    # Repaired (the default): clock gaps inside strokes filled in; this copy has no isolated jump to drop.
    assert report["repaired"] is True and report["interpolated_points"] == 34765 and report["dropped_jumps"] == 0
    assert report["split_lines"] == {"trainset": 5363, "testset_v": 1438, "testset_t": 0, "testset_f": 3859}
    # testset_t is withheld from this copy: all 216 of its forms are reported absent.
    assert report["split_forms_absent"]["testset_t"] == 216
    assert len(real_data.split_indices("train")) == 5363 + 3859


def test_real_lines_look_like_handwriting(real_data):
    lengths = np.diff(real_data.starts)
    assert 500 < np.median(lengths) < 750  # points per line
    mean, std = real_data.normalization("train")
    assert 0 < mean[0] < 20 and abs(mean[1]) < 2  # writing moves right
    assert 20 < std[0] < 60 and 20 < std[1] < 60
    i = real_data.index("a02-050-03") if "a02-050-03" in real_data.ids else 0
    assert real_data.texts[i].strip() and real_data.line(i)[:, 2].sum() >= 1


def test_small_model_learns_real_lines(real_data):
    from zoo import backend
    from zoo.data.pipeline import LineBatches
    from zoo.evaluation import evaluate_handwriting
    from zoo.models.predictor import HandwritingPredictor
    from zoo.training.graves_rmsprop import GravesRMSprop

    keras.utils.set_random_seed(0)
    mean, std = real_data.normalization("train")
    train = real_data.lines("trainset")[:96]
    held_out = real_data.lines("testset_v")[:24]
    model = HandwritingPredictor(units=32, num_layers=2, num_mixtures=5, offset_mean=mean, offset_std=std)
    model.build()
    model.compile(optimizer=GravesRMSprop(learning_rate=1e-3))
    before = evaluate_handwriting(model, held_out)["nll_nats_per_point"]
    batches = LineBatches([model.normalize(ln) for ln in train], batch_size=8, steps_per_epoch=50)
    history = model.fit(backend.fit_data(batches, repeat=True), steps_per_epoch=50, epochs=1, verbose=0)
    after = evaluate_handwriting(model, held_out)["nll_nats_per_point"]
    assert np.isfinite(history.history["loss"][0])
    # 50 steps take an untrained network from ~3 nats per point well below 2.
    assert before > 2.5 and after < before - 0.8, (before, after)
