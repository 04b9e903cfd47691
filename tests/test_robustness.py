"""Damaged files and interrupted writes (issue 17): clear errors naming the file and the fix,
caches prepared again, folders and checkpoints swapped in whole."""

import json
import os
import re
import subprocess
import sys
import types
import zipfile

import keras
import numpy as np
import pytest

from conftest import REPO, make_iam_folder
import zoo.models  # noqa: F401  (registers the classes load_model needs)
import zoo.training.graves_rmsprop  # noqa: F401
from zoo import presets
from zoo.cli import main
from zoo.data import cache as cache_mod
from zoo.models import HandwritingPredictor
from zoo.training import trainer
from zoo.training.graves_rmsprop import GravesRMSprop

NORM = dict(offset_mean=(4.0, 0.0), offset_std=(10.0, 10.0))


def tiny_predictor(units=8, seed=1):
    keras.utils.set_random_seed(seed)
    m = HandwritingPredictor(units=units, num_layers=1, num_mixtures=2, **NORM)
    m.build()
    return m


def truncate(path, keep=0.5):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * keep)])


def zoo_cli(*args):
    env = {**os.environ, "PYTHONPATH": REPO}
    env.pop("ZOO_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "zoo", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


# ---------------------------------------------------------------- 1. the prepared cache


def test_corrupt_cache_of_a_data_folder_is_prepared_again(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    data_dir = make_iam_folder(str(tmp_path / "iam"))
    first = cache_mod.load_handwriting(data_dir, progress=False)
    cached = cache_mod.default_cache_path(data_dir)
    truncate(cached)  # a copy cut short: np.load raises BadZipFile
    again = cache_mod.load_handwriting(data_dir, progress=False)
    assert again.ids == first.ids
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"note: the cache {cached} is unreadable" in err
    assert cache_mod.HandwritingSet.load(cached).ids == first.ids  # written anew, whole


def test_explicit_corrupt_cache_names_the_file_and_the_fix(tmp_path):
    data_dir = make_iam_folder(str(tmp_path / "iam"))
    path = str(tmp_path / "iam.npz")
    cache_mod.prepare(data_dir, path, progress=False)
    truncate(path)
    # A ValueError is what main() turns into `error: ...` (tested below with a damaged preset).
    with pytest.raises(ValueError, match=f"{re.escape(path)} is not a readable zoo cache.*python -m zoo prepare --data DIR --out {re.escape(path)}"):
        cache_mod.load_handwriting(path)


# ---------------------------------------------------------------- 2. damaged presets


def test_damaged_preset_files_raise_a_clear_error(tmp_path):
    folder = str(tmp_path / "p")
    presets.save_preset(tiny_predictor(), folder, {})
    for name in (presets.WEIGHTS, presets.CONFIG):
        path = os.path.join(folder, name)
        good = open(path, "rb").read()
        truncate(path)
        with pytest.raises(ValueError, match=f"{re.escape(path)} is damaged or incomplete.*Restore the folder"):
            presets.from_preset(folder)
        with open(path, "wb") as f:
            f.write(good)
    os.remove(os.path.join(folder, presets.WEIGHTS))
    with pytest.raises(ValueError, match="model.weights.h5 is damaged or incomplete .*missing"):
        presets.from_preset(folder)


def test_zoo_sample_on_a_damaged_preset_says_error_not_traceback(tmp_path):
    folder = str(tmp_path / "p")
    presets.save_preset(tiny_predictor(), folder, {})
    truncate(os.path.join(folder, presets.WEIGHTS))
    proc = zoo_cli("sample", "--model", folder, "--steps", "5", "--out", str(tmp_path / "s.svg"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "error:" in proc.stderr and "model.weights.h5 is damaged or incomplete" in proc.stderr


# ---------------------------------------------------------------- 4. sampling flags checked first


def test_bad_bias_and_extension_are_refused_before_any_model_is_loaded(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZOO_DEBUG", "1")  # keeps main() from redirecting file descriptor 2 in this process
    missing = str(tmp_path / "no-such-preset")  # loading it would fail: the checks must come first
    for argv in (
        ["write", "hi", "--model", missing, "--bias", "nan", "--out", str(tmp_path / "a.svg")],
        ["write", "hi", "--model", missing, "--bias", "-1", "--out", str(tmp_path / "a.svg")],
        ["sample", "--model", missing, "--bias", "nan", "--out", str(tmp_path / "a.svg")],
        ["sample", "--model", missing, "--bias", "-0.5", "--out", str(tmp_path / "a.svg")],
    ):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        assert "argument --bias" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["write", "hi", "--model", missing, "--out", str(tmp_path / "a.gif")])
    assert "FILE.svg or FILE.png" in capsys.readouterr().err
    # A handwriting preset that cannot be loaded: the extension is refused first.
    broken = str(tmp_path / "broken")
    presets.save_preset(tiny_predictor(), broken, {})
    truncate(os.path.join(broken, presets.WEIGHTS))
    for argv in (["sample", "--model", broken, "--out", str(tmp_path / "a.gif")], ["write", "hi", "--model", broken, "--out", str(tmp_path / "x" / "a.svg")]):
        with pytest.raises(SystemExit):
            main(argv)
        err = capsys.readouterr().err
        assert "FILE.svg or FILE.png" in err or "does not exist" in err


# ---------------------------------------------------------------- 5. resuming another kind, ignored flags


@pytest.fixture
def resumable_run(tmp_path):
    """A run folder as an older trainer left it: a prediction checkpoint and state.json beside it."""
    root = str(tmp_path / "iam")
    make_iam_folder(root)
    cache = str(tmp_path / "iam.npz")
    cache_mod.prepare(root, cache, progress=False)
    model = tiny_predictor()
    model.compile(optimizer=GravesRMSprop(learning_rate=1e-4))
    model.optimizer.build(model.trainable_variables)
    run = tmp_path / "run"
    run.mkdir()
    model.save(str(run / trainer.CHECKPOINT))
    history = [{"epoch": 1, "loss": 900.0, "val_loss": 950.0, "learning_rate": 1e-4, "train_seconds": 1.0}]
    (run / trainer.STATE).write_text(json.dumps({"epoch": 1, "history": history, "wait": 0, "best": 950.0, "best_epoch": 1, "train_seconds": 1.0}))
    return {"cache": cache, "run": str(run)}


def test_resuming_another_model_kind_fails_before_reading_data(resumable_run, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DEBUG", "1")  # main() re-raises, so the message is checked here
    with pytest.raises(ValueError, match="holds a HandwritingPredictor checkpoint, so `train synthesis` cannot resume it.*train prediction"):
        main(["train", "synthesis", "--data", str(tmp_path / "not-read.npz"), "--out", resumable_run["run"]])


def test_a_handwriting_run_is_not_resumed_as_a_text_model(resumable_run, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DEBUG", "1")
    with pytest.raises(ValueError, match="holds a HandwritingPredictor checkpoint, so `train char-small` cannot resume it"):
        main(["train", "char-small", "--train-file", str(tmp_path / "not-read.txt"), "--out", resumable_run["run"]])


def test_resume_names_the_flags_it_ignores(resumable_run, monkeypatch, capsys):
    monkeypatch.setenv("ZOO_DEBUG", "1")
    main(["train", "--data", resumable_run["cache"], "--out", resumable_run["run"], "--epochs", "1", "--units", "16", "--layers", "1",
          "--mixtures", "3", "--init-from", "iam-prediction", "--batch-size", "2", "--max-val-lines", "2", "--no-xla"])
    err = capsys.readouterr().err
    assert "resuming from" in err
    warning = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert len(warning) == 1
    assert "--units 16 (the model has 8)" in warning[0] and "--mixtures 3 (the model has 2)" in warning[0]
    assert "--init-from iam-prediction" in warning[0] and "--layers" not in warning[0]  # --layers 1 is the model's own


# ---------------------------------------------------------------- 6. atomic checkpoints and folders


class _Batches(keras.utils.PyDataset):
    def __init__(self):
        super().__init__()
        self.epoch = 0

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return np.ones((4, 3), np.float32), np.zeros((4, 1), np.float32)


def test_a_kill_after_the_checkpoint_never_pairs_it_with_an_older_state(tmp_path, monkeypatch):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    run = str(tmp_path / "run")
    trainer.fit(model, _Batches(), _Batches(), run, epochs=1, tensorboard=False, verbose=0)

    def killed(path, obj):  # the process dies right after checkpoint.keras was replaced
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(trainer.atomic, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(model, _Batches(), _Batches(), run, epochs=2, tensorboard=False, verbose=0)
    monkeypatch.undo()
    state = trainer.load_state(run)
    restored = keras.saving.load_model(os.path.join(run, trainer.CHECKPOINT))
    assert int(restored.optimizer.iterations) == 2 * state["epoch"]  # the state of the epoch whose weights are saved
    assert [h["epoch"] for h in state["history"]] == list(range(1, state["epoch"] + 1))
    assert not [f for f in os.listdir(run) if ".tmp" in f]


def test_an_older_run_folder_without_state_in_the_checkpoint_still_resumes(resumable_run):
    with zipfile.ZipFile(os.path.join(resumable_run["run"], trainer.CHECKPOINT)) as z:
        assert trainer.STATE_IN_CHECKPOINT not in z.namelist()
    assert trainer.load_state(resumable_run["run"])["epoch"] == 1
    assert isinstance(trainer.resume(resumable_run["run"]), HandwritingPredictor)


def _weights_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


def test_a_failed_save_preset_leaves_the_old_preset_whole(tmp_path, monkeypatch):
    folder = str(tmp_path / "p")
    old = tiny_predictor(units=8, seed=1)
    presets.save_preset(old, folder, {"version": 1}, "# old\n")
    presets.save_styles(folder, {"a": (np.zeros((3, 3), np.float32), "a")})
    before = {n: open(os.path.join(folder, n), "rb").read() for n in os.listdir(folder)}

    def disk_full(self, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"\x89HDF\r\n")  # a few bytes, then the failure
        raise OSError("No space left on device")

    monkeypatch.setattr(HandwritingPredictor, "save_weights", disk_full)
    with pytest.raises(OSError, match="No space"):
        presets.save_preset(tiny_predictor(units=16, seed=2), folder, {"version": 2}, "# new\n")
    monkeypatch.undo()
    assert {n: open(os.path.join(folder, n), "rb").read() for n in os.listdir(folder)} == before
    assert _weights_equal(presets.from_preset(folder), old)
    assert sorted(os.listdir(tmp_path)) == ["p"]  # no temporary folder left beside it
    # A save that succeeds replaces the four files and keeps the others (styles).
    new = tiny_predictor(units=16, seed=2)
    presets.save_preset(new, folder, {"version": 2})
    assert _weights_equal(presets.from_preset(folder), new) and presets.load_metadata(folder) == {"version": 2}
    assert presets.STYLES in os.listdir(folder) and sorted(os.listdir(tmp_path)) == ["p"]


def test_a_failed_export_leaves_the_preset_whole_and_a_good_one_adds_to_it(tmp_path, monkeypatch):
    import export
    import export.graphs
    import export.savedmodel

    folder = str(tmp_path / "p")
    presets.save_preset(tiny_predictor(), folder, {"model": "HandwritingPredictor"})
    before = {n: open(os.path.join(folder, n), "rb").read() for n in os.listdir(folder)}
    monkeypatch.setattr(export.graphs, "graphs_for", lambda model: types.SimpleNamespace(info={"kind": "prediction"}))

    def half_written(model, graphs, out):
        os.makedirs(os.path.join(out, "saved_model"))
        with open(os.path.join(out, "saved_model", "saved_model.pb"), "wb") as f:
            f.write(b"\0" * 10)
        raise RuntimeError("killed midway")

    monkeypatch.setattr(export.savedmodel, "export_saved_model", half_written)
    with pytest.raises(RuntimeError, match="killed midway"):
        export.export_model(folder, folder, formats=("saved_model",))
    assert {n: open(os.path.join(folder, n), "rb").read() for n in os.listdir(folder)} == before
    assert sorted(os.listdir(tmp_path)) == ["p"]

    def whole(model, graphs, out):
        os.makedirs(os.path.join(out, "saved_model"))
        return {"dir": "saved_model"}

    monkeypatch.setattr(export.savedmodel, "export_saved_model", whole)
    entry = export.export_model(folder, folder, formats=("saved_model",))
    assert sorted(os.listdir(folder)) == sorted([*before, "saved_model"])
    meta = presets.load_metadata(folder)
    assert meta["model"] == "HandwritingPredictor" and meta["export"]["saved_model"] == {"dir": "saved_model"} == entry["saved_model"]
    assert presets.from_preset(folder) is not None


def test_a_failed_saved_model_write_keeps_the_old_one(tmp_path, monkeypatch):
    import tensorflow as tf

    import export.savedmodel

    old = tmp_path / "saved_model"
    old.mkdir()
    (old / "saved_model.pb").write_bytes(b"old")

    def killed(module, path, signatures=None):
        os.makedirs(path)
        open(os.path.join(path, "saved_model.pb"), "wb").close()
        raise RuntimeError("killed midway")

    monkeypatch.setattr(tf.saved_model, "save", killed)
    graphs = types.SimpleNamespace(step=None, loop=None, signatures={})
    with pytest.raises(RuntimeError):
        export.savedmodel.export_saved_model(types.SimpleNamespace(weights=[]), graphs, str(tmp_path))
    assert os.listdir(tmp_path) == ["saved_model"] and (old / "saved_model.pb").read_bytes() == b"old"

    def writes(module, path, signatures=None):
        os.makedirs(path)
        (open(os.path.join(path, "saved_model.pb"), "wb")).write(b"new")

    monkeypatch.setattr(tf.saved_model, "save", writes)
    export.savedmodel.export_saved_model(types.SimpleNamespace(weights=[]), graphs, str(tmp_path))
    assert os.listdir(tmp_path) == ["saved_model"] and (old / "saved_model.pb").read_bytes() == b"new"


@pytest.mark.parametrize("exchange", [True, False])
def test_replace_folder_swaps_in_the_new_folder(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(presets, "_rename_exchange", lambda a, b: False)
    target, new = tmp_path / "p", tmp_path / "p.new"
    target.mkdir()
    (target / "a").write_text("old")
    new.mkdir()
    (new / "a").write_text("new")
    presets.replace_folder(str(new), str(target))
    assert os.listdir(tmp_path) == ["p"] and (target / "a").read_text() == "new"


def test_a_non_preset_folder_is_not_replaced(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="no preset"):
        presets.save_preset(tiny_predictor(), str(tmp_path / "stuff"), {})
    assert os.listdir(tmp_path / "stuff") == ["notes.txt"]


# ---------------------------------------------------------------- 7. dead code


def test_dead_helpers_are_gone():
    from zoo.data import iam, pipeline

    assert not hasattr(pipeline, "normalize_offsets")
    assert not hasattr(iam, "alphabet_counts") and "alphabet_counts" not in iam.__all__
