"""Weights trained on the Keras JAX backend load on TensorFlow and give the same outputs.

Needs an interpreter with jax, keras and tfp-nightly: set ZOO_JAX_PYTHON to it
(`.ci/run` makes one, ../jaxenv, with the pins it lists). Part of the default
suite whenever ZOO_JAX_PYTHON is set; skipped, saying so, when it is not.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from keras import ops

from conftest import REPO, make_iam_folder
from zoo.presets import from_preset

JAX_PYTHON = os.environ.get("ZOO_JAX_PYTHON")

pytestmark = pytest.mark.skipif(
    not JAX_PYTHON,
    reason="the JAX backend is not tested: set ZOO_JAX_PYTHON to a Python with jax, keras==3.15.1 and tfp-nightly (.ci/run makes ../jaxenv)",
)


def test_jax_trained_preset_runs_on_tensorflow(tmp_path):
    data = make_iam_folder(str(tmp_path / "iam"))
    run = str(tmp_path / "run")
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": REPO, "ZOO_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [JAX_PYTHON, "-m", "zoo", "train", "--data", data, "--out", run, "--units", "8", "--layers", "2", "--mixtures", "2",
         "--batch-size", "4", "--steps-per-epoch", "2", "--epochs", "2"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    assert "backend jax" in proc.stderr
    x = np.random.default_rng(0).normal(size=(2, 30, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    # The forward pass, and the Keras engine's sampling loop (jax.lax.while_loop there), on JAX.
    script = (
        "import sys, numpy as np; from keras import ops; from zoo.presets import from_preset; "
        "from zoo.sampling.handwriting import sample_unconditional; "
        f"m = from_preset({run + '/preset'!r}); np.save(sys.argv[1], ops.convert_to_numpy(m(np.load(sys.argv[2])))); "
        "np.save(sys.argv[3], sample_unconditional(m, steps=25, count=2, bias=0.5, seed=4, backend='keras'))"
    )
    subprocess.run([JAX_PYTHON, "-c", script, str(tmp_path / "y.npy"), str(tmp_path / "x.npy"), str(tmp_path / "s.npy")], cwd=REPO, env=env, check=True, timeout=300)
    on_jax = np.load(tmp_path / "y.npy")
    model = from_preset(run + "/preset")
    on_tf = ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(on_tf, on_jax, atol=1e-5)
    from zoo.sampling.handwriting import sample_unconditional

    sampled_tf = sample_unconditional(model, steps=25, count=2, bias=0.5, seed=4, backend="keras")
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), sampled_tf, atol=1e-3)


def test_prepared_gpu_run_works_on_cpu(tmp_path):
    """gpu/train.sh, the one command a lent GPU machine runs (issue 13), end to end with a tiny
    budget: smoke step, training, evaluation, and the files it brings back under $OUT."""
    data = make_iam_folder(str(tmp_path / "iam"))
    cache = str(tmp_path / "iam.npz")
    env = {**os.environ, "PYTHONPATH": REPO, "ZOO_CACHE_DIR": str(tmp_path / "cache")}
    subprocess.run([sys.executable, "-m", "zoo", "prepare", "--data", data, "--out", cache], cwd=REPO, env=env, check=True, capture_output=True, timeout=300)
    out = tmp_path / "out"
    env.update(PYTHON=JAX_PYTHON, OUT=str(out), ZOO_GPU_DATA=cache, ZOO_GPU_RUN=str(tmp_path / "run"))
    proc = subprocess.run(
        ["bash", "gpu/train.sh", "synthesis", "5", "--units", "8", "--layers", "1", "--mixtures", "2", "--window-components", "2",
         "--batch-size", "4", "--steps-per-epoch", "2", "--epochs", "1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    brought_back = sorted(p.name for p in out.iterdir())
    assert brought_back == sorted(["README.md", "config.json", "evaluation.json", "history.csv", "loss.png", "metadata.json", "model.weights.h5", "train.log"])
    assert len(brought_back) <= 8  # the device tool's limit
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["split"] == "testset_v" and np.isfinite(evaluation["nll_nats_per_line"])
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["backend"] == "jax" and metadata["xla"] is True
    log = (out / "train.log").read_text()
    assert "smoke test: import, build, one step" in log and "val_loss" in log
    # Of the training's progress bar only each epoch's last state (with val_loss) is kept.
    assert all("val_loss" in line for line in log.split("training synthesis")[1].splitlines() if "━" in line)
    # The weights come back loadable on TensorFlow.
    model = from_preset(str(tmp_path / "run" / "preset"))
    assert model.count_params() > 0

    # Without the data it stops at once and says what to do.
    env["ZOO_GPU_DATA"] = str(tmp_path / "missing.npz")
    proc = subprocess.run(["bash", "gpu/train.sh", "synthesis", "5"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "python -m zoo prepare" in proc.stdout
