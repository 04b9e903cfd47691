"""The presets in saved_models/ load, sample, and score what their metadata says."""

import numpy as np
import pytest

from conftest import real_data_dir, requires_data
from zoo.presets import from_preset, list_presets, load_metadata
from zoo.sampling.handwriting import sample_unconditional


def test_prediction_preset_is_shipped_with_its_figures():
    assert "iam-prediction" in list_presets()
    meta = load_metadata("iam-prediction")
    for key in ("data", "train_splits", "validation_split", "evaluation", "train_seconds", "history", "normalization"):
        assert key in meta
    assert meta["validation_split"] == "testset_v" and meta["evaluation"]["lines"] == 1438
    assert meta["evaluation"]["nll_nats_per_line"] < 0


def test_prediction_preset_samples():
    model = from_preset("iam-prediction")
    meta = load_metadata("iam-prediction")
    assert list(model.offset_mean) == pytest.approx(meta["normalization"]["offset_mean"])
    strokes = sample_unconditional(model, steps=200, count=2, seed=0)
    assert strokes.shape == (2, 200, 3) and np.all(np.isfinite(strokes))
    # Real handwriting moves right on average and lifts the pen now and then.
    assert strokes[..., 0].mean() > 0 and 0 < strokes[..., 2].mean() < 0.3


@requires_data
def test_prediction_preset_scores_its_metadata_on_testset_v():
    from zoo.data.cache import load_handwriting
    from zoo.evaluation import evaluate_handwriting

    data = load_handwriting(real_data_dir(), progress=False)
    model = from_preset("iam-prediction")
    result = evaluate_handwriting(model, data.lines("testset_v")[:120])
    expected = load_metadata("iam-prediction")["evaluation"]["nll_nats_per_point"]
    assert result["nll_nats_per_point"] == pytest.approx(expected, abs=0.25)


def test_synthesis_preset_is_shipped_and_writes():
    from zoo.sampling.handwriting import write

    assert "iam-synthesis" in list_presets()
    model = from_preset("iam-synthesis")
    chars = model.alphabet.chars
    assert set("QXZ0123456789.,!?'\"-") <= set(chars) and set("abcxyzABC") <= set(chars)
    assert len(model.styles) >= 3
    meta = load_metadata("iam-synthesis")
    assert meta["evaluation"]["lines"] == 1438 and meta["evaluation"]["nll_nats_per_line"] < 0
    offsets = write(model, ["Hello world"], bias=1.0, style=next(iter(model.styles)))
    assert len(offsets) == 1 and np.all(np.isfinite(offsets[0]))


def test_zoo_write_with_the_shipped_export_runs_without_tensorflow(tmp_path):
    """`zoo write` on a preset with a current ONNX export loads onnxruntime only (TensorFlow's import costs ~4 s),
    and writes the same strokes as the Keras path."""
    import json
    import subprocess
    import sys

    code = (
        "import sys; from zoo.cli import main; main(sys.argv[1:]); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'"
    )
    outs = {}
    for backend in ("auto", "keras"):
        out = str(tmp_path / f"{backend}.svg")
        run = subprocess.run(
            [sys.executable, "-c", code if backend == "auto" else "import sys; from zoo.cli import main; main(sys.argv[1:])",
             "write", "Hello world", "--bias", "1", "--backend", backend, "--out", out],
            capture_output=True, text=True, timeout=300,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        assert json.loads(run.stdout.strip().splitlines()[-1])["lines"] == 1
        outs[backend] = open(out).read()
    assert outs["auto"] == outs["keras"]
