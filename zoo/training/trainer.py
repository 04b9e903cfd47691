"""Keras `fit` with what a long run needs: atomic checkpoints, resume, early stopping,
NaN detection, a wall-clock budget, CSV and TensorBoard logs, a progress bar.

The trainer knows nothing of handwriting or text: it takes a compiled Keras
model and two datasets. A run directory holds

    checkpoint.keras    last finished epoch: weights + optimiser state (atomic)
    state.json          epoch, best validation loss, patience counter, history
    best.weights.h5     weights of the best validation epoch
    history.csv         one row per epoch;  logs/  TensorBoard events

Files are written to a temporary name and renamed, so a run killed at any
moment (kill -9 included) leaves the previous checkpoint intact, and `train`
called again on the same directory resumes after the last finished epoch.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import keras

from zoo import backend

CHECKPOINT = "checkpoint.keras"
STATE = "state.json"
BEST_WEIGHTS = "best.weights.h5"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def _atomic_write_json(path: str, obj) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _atomic_save(save_fn, path: str) -> None:
    root, ext = os.path.splitext(path)
    if path.endswith(".weights.h5"):
        tmp = f"{path[: -len('.weights.h5')]}.tmp-{os.getpid()}.weights.h5"
    else:
        tmp = f"{root}.tmp-{os.getpid()}{ext}"
    save_fn(tmp)
    os.replace(tmp, path)


def load_state(run_dir: str) -> dict | None:
    path = os.path.join(run_dir, STATE)
    if not os.path.isfile(path) or not os.path.isfile(os.path.join(run_dir, CHECKPOINT)):
        return None
    with open(path) as f:
        return json.load(f)


class RunState(keras.callbacks.Callback):
    """Checkpoint every epoch, early stopping that survives a restart, NaN and time guards."""

    def __init__(self, run_dir, state, monitor="val_loss", patience=10, time_budget=None):
        super().__init__()
        self.run_dir = run_dir
        self.state = state
        self.monitor = monitor
        self.patience = patience
        self.time_budget = time_budget
        self.started = time.time()
        self.diverged = None
        self.stop_reason = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged = f"training loss became {loss} at epoch {self.state['epoch'] + 1}, batch {batch}"
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged:
            return  # never checkpoint a broken model
        logs = {k: float(v) for k, v in (logs or {}).items()}
        value = logs.get(self.monitor, logs.get("loss"))
        if value is not None and not math.isfinite(value):
            self.diverged = f"{self.monitor} became {value} at epoch {epoch + 1}"
            self.model.stop_training = True
            return
        st = self.state
        st["epoch"] = epoch + 1
        st["train_seconds"] = st.get("train_seconds", 0.0) + (time.time() - self.started)
        self.started = time.time()
        st["history"].append({"epoch": epoch + 1, **logs, "learning_rate": learning_rate(self.model), "train_seconds": round(st["train_seconds"], 1)})
        if value is not None and value < st.get("best", math.inf):
            st["best"], st["best_epoch"], st["wait"] = value, epoch + 1, 0
            _atomic_save(self.model.save_weights, os.path.join(self.run_dir, BEST_WEIGHTS))
        else:
            st["wait"] = st.get("wait", 0) + 1
        _atomic_save(self.model.save, os.path.join(self.run_dir, CHECKPOINT))
        if self.patience and st["wait"] >= self.patience:
            self.stop_reason = f"early stopping: no improvement of {self.monitor} for {self.patience} epochs"
            st["stopped"] = self.stop_reason
            self.model.stop_training = True
        if self.time_budget and st["train_seconds"] >= self.time_budget:
            self.stop_reason = f"time budget of {self.time_budget:g} s reached"
            self.model.stop_training = True
        _atomic_write_json(os.path.join(self.run_dir, STATE), st)


def fit(
    model,
    train_data,
    val_data,
    run_dir: str,
    epochs: int,
    patience: int = 10,
    time_budget: float | None = None,
    tensorboard: bool = True,
    verbose: int | str = "auto",
) -> dict:
    """Train ``model`` (compiled, or restored by `resume`) and return the run state."""
    os.makedirs(run_dir, exist_ok=True)
    state = load_state(run_dir) or {"epoch": 0, "history": [], "wait": 0}
    if state.get("stopped"):
        return state
    train_data.epoch = state["epoch"]  # the batch stream continues where it stopped
    run = RunState(run_dir, state, patience=patience, time_budget=time_budget)
    callbacks = [run, keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=True)]
    if tensorboard:
        try:
            import tensorboard  # noqa: F401  (the callback needs it and TensorFlow)
            import tensorflow  # noqa: F401

            callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), update_freq="epoch"))
        except ImportError:
            print("TensorBoard logs are off: `pip install tensorboard` (and TensorFlow) to get them", file=sys.stderr)
    if state["epoch"] < epochs:
        train_stream = backend.fit_data(train_data, repeat=True)
        model.fit(
            train_stream,
            steps_per_epoch=len(train_data) if train_stream is not train_data else None,
            validation_data=backend.fit_data(val_data),
            epochs=epochs,
            initial_epoch=state["epoch"],
            callbacks=callbacks,
            verbose=verbose,
        )
    if run.diverged:
        raise TrainingDiverged(
            f"{run.diverged}. Nothing was saved from the diverged epoch; {os.path.join(run_dir, CHECKPOINT)} "
            "holds the last good one. Lower the learning rate (--learning-rate) or the batch size and "
            "run the same command again to resume from it."
        )
    state["stop_reason"] = run.stop_reason or ("finished" if state["epoch"] >= epochs else None)
    _atomic_write_json(os.path.join(run_dir, STATE), state)
    return state


def learning_rate(model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def resume(run_dir: str, jit_compile: bool | None = None, new_learning_rate: float | None = None):
    """The model of the last checkpoint in ``run_dir`` with its optimiser state, or None.

    ``new_learning_rate`` replaces the checkpoint's rate (annealing a run by
    resuming it with a lower ``--learning-rate``); the optimiser's moments are kept."""
    if load_state(run_dir) is None:
        return None
    import zoo.models  # noqa: F401  (registers the zoo's classes for deserialisation)
    import zoo.training.graves_rmsprop  # noqa: F401
    import zoo.training.tbptt  # noqa: F401

    model = keras.saving.load_model(os.path.join(run_dir, CHECKPOINT))
    if jit_compile is not None:
        model.jit_compile = jit_compile
    if new_learning_rate is not None and not math.isclose(new_learning_rate, learning_rate(model), rel_tol=1e-6):
        print(f"learning rate {learning_rate(model):g} -> {new_learning_rate:g}", file=sys.stderr)
        model.optimizer.learning_rate.assign(new_learning_rate)
    return model
