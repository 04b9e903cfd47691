import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from conftest import REPO, make_iam_folder, wait_for_epoch
import zoo.models  # noqa: F401  (registers the classes load_model needs)
import zoo.training.graves_rmsprop  # noqa: F401
from zoo.data.cache import prepare
from zoo.training import trainer


def zoo_cmd(*args):
    return [sys.executable, "-m", "zoo", *args]


@pytest.fixture(scope="module")
def fixture_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("iam")
    make_iam_folder(str(root), lines_per_form=4)
    out = str(root / "cache.npz")
    prepare(str(root), out, progress=False)
    return out


def test_killed_run_resumes_where_it_stopped(fixture_cache, tmp_path):
    run = str(tmp_path / "run")
    args = ["train", "--data", fixture_cache, "--out", run, "--units", "8", "--layers", "1", "--mixtures", "2",
            "--batch-size", "4", "--steps-per-epoch", "2", "--patience", "0"]
    env = {**os.environ, "PYTHONPATH": REPO}
    proc = subprocess.Popen(zoo_cmd(*args, "--epochs", "10000"), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_path = os.path.join(run, trainer.STATE)
    try:
        wait_for_epoch(state_path, 2)
    finally:
        proc.send_signal(signal.SIGKILL)  # kill -9: no chance to clean up
        proc.wait()
    # The epoch a resume starts from is the checkpoint's own (state.json is a copy written
    # just after it: a kill between the two leaves the copy one epoch behind).
    killed_at = trainer.load_state(run)["epoch"]
    assert keras.saving.load_model(os.path.join(run, trainer.CHECKPOINT)) is not None  # never half-written
    target = killed_at + 2
    # Resumed with a lower rate (annealing): the new rate replaces the checkpoint's.
    done = subprocess.run(zoo_cmd(*args, "--epochs", str(target), "--learning-rate", "5e-5"), cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming from" in done.stderr and "learning rate 0.0001 -> 5e-05" in done.stderr
    with open(state_path) as f:
        state = json.load(f)
    assert state["epoch"] == target
    assert [h["epoch"] for h in state["history"]] == list(range(1, target + 1))
    rates = [h["learning_rate"] for h in state["history"]]
    assert rates[:killed_at] == pytest.approx([1e-4] * killed_at) and rates[killed_at:] == pytest.approx([5e-5] * 2)
    with open(os.path.join(run, "preset", "metadata.json")) as f:
        assert json.load(f)["learning_rate"] == pytest.approx(5e-5)
    assert json.loads(done.stdout)["epochs"] == target
    assert os.path.isfile(os.path.join(run, "preset", "model.weights.h5"))
    assert os.path.isfile(os.path.join(run, "loss.png"))
    assert any(f.startswith("events.out.tfevents") for _, _, files in os.walk(os.path.join(run, "logs")) for f in files)

    # A new run started from the finished preset's weights: with no epoch trained its
    # evaluation is the preset's own, and the metadata says where it started.
    preset = os.path.join(run, "preset")
    with open(os.path.join(preset, "metadata.json")) as f:
        source = json.load(f)
    follow = subprocess.run(zoo_cmd(*args, "--out", str(tmp_path / "run2"), "--init-from", preset, "--epochs", "0"),
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert follow.returncode == 0, follow.stderr
    assert "starting from the weights of" in follow.stderr
    with open(tmp_path / "run2" / "preset" / "metadata.json") as f:
        meta = json.load(f)
    assert meta["evaluation"]["nll_nats_per_line"] == pytest.approx(source["evaluation"]["nll_nats_per_line"], rel=1e-5)
    assert meta["initialized_from"]["epochs"] == target and meta["initialized_from"]["preset"] == os.path.abspath(preset)
    # The ledger keeps the earlier leg's machine, batches and validation curve.
    leg = meta["initialized_from"]
    assert leg["hardware"] == source["hardware"] and leg["batch_size"] == source["batch_size"]
    assert [h["val_loss"] for h in leg["history"]] == pytest.approx([h["val_loss"] for h in source["history"]])
    wrong = subprocess.run(zoo_cmd("train", "synthesis", "--data", fixture_cache, "--out", str(tmp_path / "run3"), "--init-from", preset),
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert wrong.returncode != 0 and "holds a HandwritingPredictor, not a HandwritingSynthesizer" in wrong.stderr


class _Batches(keras.utils.PyDataset):
    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.epoch = x, y, 0

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return self.x, self.y


def test_the_ledger_names_a_shipped_preset_by_name_and_any_other_folder_by_path(tmp_path):
    # The metadata travels with a download, where the trainer's absolute path would mean nothing.
    from zoo.cli.handwriting import preset_label

    assert preset_label(os.path.join(REPO, "saved_models", "iam-prediction-400")) == "iam-prediction-400"
    assert preset_label(os.path.join(REPO, "saved_models", "iam-synthesis") + os.sep) == "iam-synthesis"
    copy = tmp_path / "iam-prediction-400"  # same name, another folder: not the shipped preset
    copy.mkdir()
    assert preset_label(str(copy)) == str(copy)


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_checkpoint(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((4, 3), np.float32)
    good = _Batches(x, np.ones((4, 1), np.float32))
    run = str(tmp_path / "run")
    trainer.fit(model, good, good, run, epochs=1, tensorboard=False, verbose=0)
    before = os.path.getmtime(os.path.join(run, trainer.CHECKPOINT))
    bad = _Batches(x, np.full((4, 1), np.nan, np.float32))
    with pytest.raises(trainer.TrainingDiverged, match="loss became nan.*Lower the learning rate"):
        trainer.fit(model, bad, good, run, epochs=3, tensorboard=False, verbose=0)
    assert os.path.getmtime(os.path.join(run, trainer.CHECKPOINT)) == before
    with open(os.path.join(run, trainer.STATE)) as f:
        assert json.load(f)["epoch"] == 1


def test_early_stopping_state_survives_a_restart(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")  # lr 0: never improves
    data = _Batches(np.ones((4, 3), np.float32), np.zeros((4, 1), np.float32))
    run = str(tmp_path / "run")
    trainer.fit(model, data, data, run, epochs=2, patience=3, tensorboard=False, verbose=0)
    state = trainer.fit(model, data, data, run, epochs=50, patience=3, tensorboard=False, verbose=0)
    assert state["epoch"] == 4  # best at 1, then 3 epochs without improvement
    assert "early stopping" in state["stop_reason"]


def test_weight_average_is_what_is_validated_and_kept_while_the_checkpoint_resumes_the_raw_weights(tmp_path):
    """--ema: validation judges the optimiser's moving average of the weights, best.weights.h5 holds
    it, and the checkpoint keeps the raw weights (with the average in the optimiser) to resume."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05, use_ema=True, ema_momentum=0.9), loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    data = _Batches(x, x @ np.array([[1.0], [-2.0], [0.5]], np.float32))
    run = str(tmp_path / "run")
    assert trainer.uses_weight_average(model)
    state = trainer.fit(model, data, data, run, epochs=3, patience=0, tensorboard=False, verbose=0)
    average = model.get_weights()  # Keras ends fit with the average in the model
    checkpoint = keras.saving.load_model(os.path.join(run, trainer.CHECKPOINT))
    raw = checkpoint.get_weights()
    assert not np.allclose(raw[0], average[0], atol=1e-4)  # SGD moved ahead of its average
    assert state["best_epoch"] == 3 and state["history"][-1]["val_loss"] == pytest.approx(model.evaluate(x, data.y, verbose=0), rel=1e-5)
    kept = keras.models.clone_model(model)
    kept.load_weights(os.path.join(run, trainer.BEST_WEIGHTS))
    for a, b in zip(kept.get_weights(), average):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    for a, b in zip(checkpoint.optimizer._model_variables_moving_average, average):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), b, rtol=1e-6)
    with trainer.averaged_weights(checkpoint):  # swapped in, then back
        np.testing.assert_allclose(checkpoint.get_weights()[0], average[0], rtol=1e-6)
    np.testing.assert_allclose(checkpoint.get_weights()[0], raw[0])


class _SlowBatches(_Batches):
    """Ten batches an epoch, each taking ``delay`` seconds to produce."""

    def __init__(self, x, y, delay):
        super().__init__(x, y)
        self.delay = delay

    def __len__(self):
        return 10

    def __getitem__(self, i):
        time.sleep(self.delay)
        return self.x, self.y


def test_time_budget_stops_within_a_batch_and_leaves_a_resumable_run(tmp_path):
    """The budget is checked after every batch, not once an epoch (issue 16: 300 s asked, 377 s spent)."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 1), np.float32)
    delay, budget = 1.0, 1.0  # one epoch takes >= 10 s: ten budgets
    train, val = _SlowBatches(x, y, delay), _Batches(x, y)
    run = str(tmp_path / "run")
    start = time.time()
    state = trainer.fit(model, train, val, run, epochs=3, time_budget=budget, tensorboard=False, verbose=0)
    took = time.time() - start
    # budget + one batch + start-up (graph tracing on a busy 2-core machine); a whole epoch is 5 s.
    print(f"time budget {budget} s: fit took {took:.2f} s")
    assert took < budget + delay + 2.5, f"{took:.1f} s for a {budget} s budget"
    assert "time budget" in state["stop_reason"]
    # The cut epoch is checkpointed whole: weights, best weights and state agree, and say it was short.
    assert state["epoch"] == 1 and 1 <= state["history"][0]["batches"] < len(train)
    assert state["best_epoch"] == 1 and os.path.isfile(os.path.join(run, trainer.BEST_WEIGHTS))
    assert trainer.load_state(run)["epoch"] == 1
    with open(os.path.join(run, trainer.STATE)) as f:
        assert "time budget" in json.load(f)["stop_reason"]
    restored = trainer.resume(run)
    np.testing.assert_allclose(restored.get_weights()[0], model.get_weights()[0])
    # Run again with the budget spent: no batch is trained. With a larger one it resumes.
    start = time.time()
    again = trainer.fit(restored, train, val, run, epochs=3, time_budget=budget, tensorboard=False, verbose=0)
    assert time.time() - start < delay and again["epoch"] == 1 and "time budget" in again["stop_reason"]
    train.delay = 0.0
    more = trainer.fit(restored, train, val, run, epochs=2, time_budget=600, tensorboard=False, verbose=0)
    assert more["epoch"] == 2 and more["stop_reason"] == "finished" and "batches" not in more["history"][1]


def test_handwriting_weight_noise_trains_and_leaves_the_means_for_sampling(fixture_cache, tmp_path, monkeypatch):
    """--adaptive-weight-noise on the prediction network (Graves 2011; sec. 4): one log-sigma per
    weight of every matrix, the description length per training line added to the training loss
    only; the preset holds the means, which evaluation uses. --weight-noise fine-tunes a preset."""
    from zoo.cli import main as zoo
    from zoo.presets import from_preset

    run = str(tmp_path / "run")
    common = ["--data", fixture_cache, "--units", "6", "--layers", "2", "--mixtures", "2", "--batch-size", "4", "--patience", "0"]
    zoo(["train", "prediction", *common, "--out", run, "--steps-per-epoch", "2", "--epochs", "2", "--adaptive-weight-noise"])
    model = from_preset(os.path.join(run, "preset"))
    assert model.adaptive_noise and model.train_lines == 16 and len(model.log_sigma) == 3  # 2 layers' fused matrices + W_hy
    with open(os.path.join(run, trainer.STATE)) as f:
        history = json.load(f)["history"]
    # The training loss carries the description length (spread over the 16 training lines); validation does not.
    assert [h["epoch"] for h in history] == [1, 2] and all(h["loss"] > h["val_loss"] + 10 for h in history)
    x = np.random.default_rng(0).normal(size=(2, 9, 3)).astype("float32")
    assert np.array_equal(keras.ops.convert_to_numpy(model(x)), keras.ops.convert_to_numpy(model(x, training=False)))
    assert not np.allclose(keras.ops.convert_to_numpy(model(x, training=True)), keras.ops.convert_to_numpy(model(x)))
    # Fixed noise on a preset's weights (fine-tuning): the same weights, noise while training.
    zoo(["train", "prediction", *common, "--out", str(tmp_path / "run2"), "--init-from", os.path.join(run, "preset"), "--weight-noise", "0.05",
         "--steps-per-epoch", "1", "--epochs", "1"])
    tuned = from_preset(str(tmp_path / "run2" / "preset"))
    assert tuned.weight_noise == 0.05 and not tuned.adaptive_noise
    with open(tmp_path / "run2" / "preset" / "metadata.json") as f:
        assert json.load(f)["initialized_from"]["optimizer_warmup_batches"] == 20  # --optimizer-warmup's default
    # Widened (--units above the preset's): with no epoch trained it scores what the preset scored.
    zoo(["train", "prediction", *common, "--units", "9", "--out", str(tmp_path / "run3"), "--init-from", str(tmp_path / "run2" / "preset"), "--epochs", "0"])
    with open(tmp_path / "run2" / "preset" / "metadata.json") as f:
        narrow = json.load(f)["evaluation"]["nll_nats_per_line"]
    with open(tmp_path / "run3" / "preset" / "metadata.json") as f:
        meta = json.load(f)
    assert "optimizer_warmup_batches" not in meta["initialized_from"]  # no epoch to train: no warm-up
    assert meta["initialized_from"]["widened"] == {"from_units": 6, "to_units": 9}
    assert meta["evaluation"]["nll_nats_per_line"] == pytest.approx(narrow, rel=1e-5)
    assert from_preset(str(tmp_path / "run3" / "preset")).units == 9
    assert "widened from 6 to 9 units per layer" in (tmp_path / "run3" / "preset" / "README.md").read_text()
    import zoo.cli.handwriting as handwriting

    said = []

    def fail(message):
        said.append(message)
        raise SystemExit(2)

    monkeypatch.setattr(handwriting, "_fail", fail)  # keep the message (the CLI has redirected stderr by now)
    with pytest.raises(SystemExit):
        zoo(["train", "recognizer", *common[:2], "--out", str(tmp_path / "r"), "--weight-noise", "0.1"])
    assert said and "the recognizer has --dropout" in said[0]


def test_optimizer_warmup_estimates_rmsprop_averages_without_moving_the_weights():
    """trainer.warm_up_optimizer: batches at learning rate 0 fill Graves' RMSProp's n and g (eq. 39-40)
    and leave the weights and the rate as they were; the first real step then moves the weights by
    about the gradient over its spread, not by several times the rate at once as a fresh optimiser does."""
    from zoo.models import HandwritingPredictor
    from zoo.training.graves_rmsprop import GravesRMSprop

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 12, 3)).astype("float32")
    y = np.concatenate([rng.normal(size=(4, 12, 3)), np.ones((4, 12, 1))], axis=-1).astype("float32")
    batches = [(x[:2], y[:2]), (x[2:], y[2:])]

    def trained(warmup: int):
        keras.utils.set_random_seed(0)
        model = HandwritingPredictor(units=6, num_layers=2, num_mixtures=2)
        model.build()
        model.compile(optimizer=GravesRMSprop(learning_rate=1e-2), jit_compile=False)
        start = [np.array(w) for w in model.get_weights()]
        assert trainer.warm_up_optimizer(model, batches * 10, warmup) == warmup
        after_warmup = [np.array(w) for w in model.get_weights()]
        model.train_on_batch(*batches[0])
        moved = float(np.median(np.concatenate([np.abs(np.array(w) - s).ravel() for w, s in zip(model.get_weights(), start)])))
        return model, start, after_warmup, moved

    model, start, after_warmup, warmed_move = trained(20)
    assert all(np.array_equal(a, b) for a, b in zip(start, after_warmup))  # rate 0: nothing moved
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-2)
    assert all(float(np.max(np.asarray(n))) > 0 for n in model.optimizer._n)  # the averages are estimated
    # One batch again and again at rate 0 gives the same gradient each time: corrected for their start at zero,
    # n is its square and g the gradient itself, so n - g^2 = 0 (uncorrected, n - g^2 would be 0.64 eps^2 here).
    model.compile(optimizer=GravesRMSprop(learning_rate=1e-2), jit_compile=False)
    trainer.warm_up_optimizer(model, batches[:1] * 20, 20)
    for n, g in zip(model.optimizer._n, model.optimizer._g):
        np.testing.assert_allclose(np.asarray(n), np.square(np.asarray(g)), rtol=1e-4, atol=1e-12)
    # A preset whose weights give a non-finite loss stops the warm-up with a clear error.
    model.lstm.cells[0].kernel.assign(np.full(model.lstm.cells[0].kernel.shape, np.nan, np.float32))
    with pytest.raises(trainer.TrainingDiverged, match="warm-up batch 1 is nan"):
        trainer.warm_up_optimizer(model, batches, 3)
    _, _, _, fresh_move = trained(0)
    # A fresh optimiser's first step is up to lr / sqrt(0.05 - 0.05^2) = 4.6 lr for every weight with a gradient
    # (less where daleth = 1e-4 outweighs 0.0475 eps^2): several times the rate for the median weight.
    assert 2e-2 < fresh_move <= 1e-2 / np.sqrt(0.05 - 0.05**2) * 1.001
    assert warmed_move < 0.5 * fresh_move, (warmed_move, fresh_move)


def test_a_widened_network_computes_what_the_narrow_one_did_and_then_uses_its_new_units():
    """`zoo train ... --init-from PRESET --units N` (zoo/training/widen.py): old units keep their weights,
    new ones start with random incoming and zero outgoing weights."""
    from zoo.data.alphabet import Alphabet
    from zoo.models import HandwritingPredictor, HandwritingSynthesizer
    from zoo.training.widen import widen

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 30, 3)).astype("float32")
    text = np.array([[1, 2, 3, 4, 0], [2, 3, 1, 0, 0]])
    narrow_synth = HandwritingSynthesizer(Alphabet.from_texts(["hello world"]), units=8, num_layers=3, num_mixtures=3, window_components=2)
    narrow_pred = HandwritingPredictor(units=8, num_layers=2, num_mixtures=3)
    for narrow, inputs, units in ((narrow_synth, (x, text), 20), (narrow_pred, x, 13)):
        narrow.build()
        for v in narrow.weights:  # trained-looking weights, not the initial ones
            v.assign(rng.normal(0, 0.3, v.shape).astype("float32"))
        wide = widen(narrow, units)
        assert wide.units == units and type(wide) is type(narrow)
        before = keras.ops.convert_to_numpy(narrow(inputs))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(wide(inputs)), before, atol=1e-5)
        # Silent, not dead: the new units are active, and once the output reads them the function changes.
        first_kernel = wide.weights[0]
        assert first_kernel.path.endswith("lstm_1/kernel")
        assert np.abs(first_kernel.numpy()[:, 8:units]).max() > 0.01
        kernel = wide.head.dense.kernel.numpy()
        assert np.abs(kernel[8:units]).max() == 0.0
        kernel[units - 1] += 0.5
        wide.head.dense.kernel.assign(kernel)
        assert np.abs(keras.ops.convert_to_numpy(wide(inputs)) - before).max() > 1e-3
    with pytest.raises(ValueError, match="narrower than the preset's 8 units"):
        widen(narrow_pred, 4)
