"""Keras `fit` with what a long run needs: atomic checkpoints, resume, early stopping,
NaN detection, a wall-clock budget, CSV and TensorBoard logs, a progress bar.

The trainer knows nothing of handwriting or text: it takes a compiled Keras
model and two datasets. A run directory holds

    checkpoint.keras    last finished epoch: weights + optimiser state, and the run
                        state below inside the same file (one atomic write)
    state.json          epoch, best validation loss, patience counter, history, stop_reason
                        (a readable copy; the checkpoint's own copy wins if they differ)
    best.weights.h5     weights of the best validation epoch
    history.csv         one row per epoch;  logs/  TensorBoard events

Files are written to a temporary name and renamed, so a run killed at any
moment (kill -9 included) leaves the previous checkpoint intact, and `train`
called again on the same directory resumes after the last finished epoch.

The time budget counts the run folder's training seconds over all its sessions
and is checked after every batch: an epoch it cuts short is validated and
checkpointed like any other (its history row records the ``batches`` run), so
a run stops within about one batch of its budget and resumes from there.

Trained on several processes (zoo/distribute.py), only the chief (process 0) writes
these files; every process reads the same checkpoint to resume, takes the same
decisions from the same (global) losses, and takes clock decisions (the time budget)
from the chief. A process that loses the others stops at once, saying which checkpoint
a restart resumes from.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
import time
import zipfile

import keras

from zoo import atomic, backend, distribute

CHECKPOINT = "checkpoint.keras"
STATE = "state.json"
BEST_WEIGHTS = "best.weights.h5"
STATE_IN_CHECKPOINT = "zoo_state.json"  # the run state, stored inside checkpoint.keras (a zip)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def save_checkpoint(model, run_dir: str, state: dict) -> None:
    """The model (weights + optimiser) and the run state in one file, written whole and renamed.

    A kill at any moment leaves the previous epoch's pair or this one, never a mix
    (before, checkpoint.keras and state.json were two writes and a kill between
    them replayed an epoch on the newer weights). state.json follows as a copy."""
    with atomic.replacing(os.path.join(run_dir, CHECKPOINT)) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as z:
            z.writestr(STATE_IN_CHECKPOINT, json.dumps(state, indent=1))
    atomic.write_json(os.path.join(run_dir, STATE), state)


def _checkpoint_zip_read(run_dir: str, member: str):
    """A member of checkpoint.keras as parsed JSON; None when the checkpoint or the member is absent."""
    path = os.path.join(run_dir, CHECKPOINT)
    if not os.path.isfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as z:
            if member not in z.namelist():
                return None
            return json.loads(z.read(member))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ValueError(
            f"{path} is damaged ({type(exc).__name__}: {exc}): restore it, or move it away "
            f"(with {STATE}) to start the run again from scratch"
        ) from exc


def load_state(run_dir: str) -> dict | None:
    """The state of the last finished epoch, or None for a run with no checkpoint yet.

    Read from inside checkpoint.keras; run folders written before it held one
    (and text exported by hand) fall back to state.json."""
    if not os.path.isfile(os.path.join(run_dir, CHECKPOINT)):
        return None
    inside = _checkpoint_zip_read(run_dir, STATE_IN_CHECKPOINT)
    path = os.path.join(run_dir, STATE)
    outside = None
    if os.path.isfile(path):
        with open(path) as f:
            outside = json.load(f)
    if inside is None:
        return outside  # an older run folder
    # The copy is written after the checkpoint (and once more at the end of a run,
    # with its stop reason): it is newer only when it describes the same epoch.
    if outside is not None and outside.get("epoch") == inside.get("epoch"):
        return outside
    return inside


# The command that trains each kind of checkpointed model (for messages).
_TRAIN_COMMAND = {"HandwritingPredictor": "train prediction", "HandwritingSynthesizer": "train synthesis", "CarriedState": "train <text config>"}


def checkpoint_class(run_dir: str) -> str | None:
    """The class name of the model in ``run_dir``'s checkpoint, read without loading it; None if none."""
    config = _checkpoint_zip_read(run_dir, "config.json")
    return None if config is None else config.get("class_name")


def check_resumable(run_dir: str, expected, command: str) -> None:
    """Refuse, before any data is read or any epoch trained, a run folder holding another kind of model.

    ``expected``: a class name or a tuple of them; ``command``: what the user ran (for the message)."""
    expected = (expected,) if isinstance(expected, str) else tuple(expected)
    found = checkpoint_class(run_dir)
    if found is not None and found not in expected:
        other = _TRAIN_COMMAND.get(found)
        raise ValueError(
            f"{os.path.join(run_dir, CHECKPOINT)} holds a {found} checkpoint, so `{command}` cannot resume it: "
            f"give another --out for a new run" + (f", or continue that run with `{other}`" if other else "")
        )


class RunState(keras.callbacks.Callback):
    """Checkpoint every epoch, early stopping that survives a restart, NaN and time guards."""

    def __init__(self, run_dir, state, monitor="val_loss", patience=10, time_budget=None, chief=True):
        super().__init__()
        self.run_dir = run_dir
        self.chief = chief  # writes the run's files (the others of several processes keep the state in step)
        self.state = state
        self.monitor = monitor
        self.patience = patience
        self.time_budget = time_budget
        self.started = time.time()
        self.diverged = None
        self.stop_reason = None
        self.batches = 0  # training batches run in the current epoch
        self.validation_seconds = 0.0  # how long the last validation pass took
        self._validation_started = None

    def spent(self) -> float:
        """Seconds of training in this run folder so far, earlier sessions included."""
        return self.state.get("train_seconds", 0.0) + (time.time() - self.started)

    def on_epoch_begin(self, epoch, logs=None):
        self.batches = 0

    def on_test_begin(self, logs=None):
        self._validation_started = time.time()

    def on_test_end(self, logs=None):
        if self._validation_started is not None:
            self.validation_seconds = time.time() - self._validation_started
            self._validation_started = None

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged = f"training loss became {loss} at epoch {self.state['epoch'] + 1}, batch {batch}"
            self.model.stop_training = True
            return
        # The budget is checked after every batch, keeping back the time the epoch's
        # validation pass took last time: Keras then ends the epoch at once (validation,
        # on_epoch_end, a checkpoint of this shorter epoch), so a run stops within one
        # batch of its budget rather than at the end of an epoch that may take minutes.
        # Several processes stop at the chief's batch (`distribute.agree`).
        if self.time_budget and distribute.agree(self.spent() + self.validation_seconds >= self.time_budget):
            self.stop_reason = self._budget_reason()
            self.model.stop_training = True

    def _budget_reason(self) -> str:
        return f"time budget of {self.time_budget:g} s reached"

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
        row = {"epoch": epoch + 1, **logs, "learning_rate": learning_rate(self.model), "train_seconds": round(st["train_seconds"], 1)}
        steps = (self.params or {}).get("steps")
        if steps and self.batches < steps:
            # Cut short (time budget): a checkpointed epoch of fewer batches. A resumed
            # run starts the next epoch's batches; the rest of this one come round later.
            row["batches"] = self.batches
        st["history"].append(row)
        if value is not None and value < st.get("best", math.inf):
            st["best"], st["best_epoch"], st["wait"] = value, epoch + 1, 0
            with self._writing_to() as folder:
                if folder is not None:
                    # The weights that were validated: the average, where the optimiser keeps one.
                    with averaged_weights(self.model), atomic.replacing(os.path.join(folder, BEST_WEIGHTS)) as tmp:
                        self.model.save_weights(tmp)
        else:
            st["wait"] = st.get("wait", 0) + 1
        if self.patience and st["wait"] >= self.patience:
            self.stop_reason = f"early stopping: no improvement of {self.monitor} for {self.patience} epochs"
            st["stopped"] = self.stop_reason
            self.model.stop_training = True
        if self.time_budget and distribute.agree(st["train_seconds"] >= self.time_budget):
            self.stop_reason = self._budget_reason()
        if self.stop_reason:
            self.model.stop_training = True
        with self._writing_to() as folder:
            if folder is not None:
                save_checkpoint(self.model, folder, st)

    @contextlib.contextmanager
    def _writing_to(self):
        """Where this process writes the run's files: the run folder (the chief), a scratch folder
        thrown away (TensorFlow's other workers, whose saves must join the chief's collectives:
        `distribute.writes_together`), or None (nothing to write)."""
        if self.chief:
            with distribute.on_this_process():
                yield self.run_dir
        elif distribute.writes_together():
            with tempfile.TemporaryDirectory() as scratch:
                yield scratch
        else:
            yield None


def uses_weight_average(model) -> bool:
    """Whether ``model``'s optimiser keeps an exponential moving average of the weights (``--ema``)."""
    return bool(getattr(getattr(model, "optimizer", None), "use_ema", False))


@contextlib.contextmanager
def averaged_weights(model):
    """Polyak averaging: the optimiser's moving average of the weights in the model for the
    duration (swapped in place, then back, so training and the checkpoint go on with the raw
    weights); nothing changes where the optimiser keeps no average."""
    if not uses_weight_average(model) or not model.optimizer.built:
        yield
        return
    # Keras' own swap (the callback that validation uses), with its path for distributed variables.
    swapper = keras.callbacks.SwapEMAWeights()
    swapper.set_model(model)
    swapper._swap_variables()
    try:
        yield
    finally:
        swapper._swap_variables()


def warm_up_optimizer(model, batches, count: int) -> int:
    """Estimate the optimiser's running averages from ``count`` batches at learning rate 0; the weights stay put.

    A run started from a preset (--init-from) has the preset's weights but a fresh optimiser. Graves'
    RMSProp divides each step by sqrt(n - g^2 + daleth) (eq. 39-41), and with n and g starting at
    zero its first steps move every weight by several times the learning rate at once: continuing
    iam-prediction-400 at 1e-4 that cost 50 nats per line in the first epoch (-816.5 -> -766.4 on
    480 testset_v lines, 2026-12-06). After the batches, Graves' RMSProp corrects n and g for their
    start at zero (`GravesRMSprop.correct_for_zero_start`; Adam's own correction counts these steps
    already). ``batches[i]`` for i < ``count`` are the batches (the training stream: any index is one).
    Returns the number of batches run."""
    if count <= 0:
        return 0
    optimizer = model.optimizer
    rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    optimizer.learning_rate = 0.0
    try:
        for i in range(count):
            loss = float(keras.ops.convert_to_numpy(model.train_on_batch(*batches[i])))
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"the loss of optimiser warm-up batch {i + 1} is {loss}: the preset's weights give a non-finite loss on "
                    "this data (nothing was saved); check the data and the preset, or start without --init-from"
                )
    finally:
        optimizer.learning_rate = rate
    if hasattr(optimizer, "correct_for_zero_start"):
        optimizer.correct_for_zero_start(count)
    return count


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
    """Train ``model`` (compiled, or restored by `resume`) and return the run state.

    Under a data-parallel plan (zoo/distribute.py) the datasets are this process's
    shards and the model is replicated; only the chief writes files."""
    chief = distribute.is_chief()
    os.makedirs(run_dir, exist_ok=True)
    state = load_state(run_dir) or {"epoch": 0, "history": [], "wait": 0}
    if state.get("stopped"):
        return state
    train_data.epoch = state["epoch"]  # the batch stream continues where it stopped
    run = RunState(run_dir, state, patience=patience, time_budget=time_budget, chief=chief)
    callbacks = [run]
    if uses_weight_average(model):
        # Validation (early stopping, the best epoch) judges the averaged weights; placed before
        # RunState, whose on_test_end times the pass.
        callbacks.insert(0, keras.callbacks.SwapEMAWeights())
    if chief:
        callbacks.append(keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=True))
    if tensorboard and chief:
        try:
            import tensorboard  # noqa: F401  (the callback needs it and TensorFlow)
            import tensorflow  # noqa: F401

            callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), update_freq="epoch"))
        except ImportError:
            print("TensorBoard logs are off: `pip install tensorboard` (and TensorFlow) to get them", file=sys.stderr)
    if state["epoch"] < epochs and time_budget and state.get("train_seconds", 0.0) >= time_budget:
        run.stop_reason = run._budget_reason()  # spent by earlier sessions: train no batch
    elif state["epoch"] < epochs:
        train_stream = backend.fit_data(train_data, repeat=True)
        try:
            model.fit(
                train_stream,
                steps_per_epoch=len(train_data) if train_stream is not train_data else None,
                validation_data=backend.fit_data(val_data),
                epochs=epochs,
                initial_epoch=state["epoch"],
                callbacks=callbacks,
                verbose=verbose,
            )
        except BaseException as exc:
            plan = distribute.current()
            if plan is not None and plan.num_processes > 1:
                _abort_process(plan, run_dir, exc)
            raise
    if run.diverged:
        raise TrainingDiverged(
            f"{run.diverged}. Nothing was saved from the diverged epoch; {os.path.join(run_dir, CHECKPOINT)} "
            "holds the last good one. Lower the learning rate (--learning-rate) or the batch size and "
            "run the same command again to resume from it."
        )
    state["stop_reason"] = run.stop_reason or ("finished" if state["epoch"] >= epochs else None)
    if chief:
        atomic.write_json(os.path.join(run_dir, STATE), state)
    return state


def _abort_process(plan, run_dir: str, exc: BaseException) -> None:
    """One of several processes failed or lost the others (a process was killed, a machine
    failed): every step needs all of them, so stop now, saying where a restart resumes."""
    if os.environ.get("ZOO_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    kept = load_state(run_dir)
    where = (
        f"{os.path.join(run_dir, CHECKPOINT)} holds the last complete epoch ({kept['epoch']})"
        if kept
        else "no epoch was complete, so nothing was saved"
    )
    cause = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    distribute.abort(
        f"training stopped: process {plan.process_index} of {plan.num_processes} lost the others or failed ({cause}). "
        f"{where}; start all {plan.num_processes} processes again with the same command to resume from it."
    )


def learning_rate(model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def resume(run_dir: str, jit_compile: bool | None = None, new_learning_rate: float | None = None, expect=None, command: str = "train"):
    """The model of the last checkpoint in ``run_dir`` with its optimiser state, or None.

    ``new_learning_rate`` replaces the checkpoint's rate (annealing a run by
    resuming it with a lower ``--learning-rate``); the optimiser's moments are kept.
    ``expect``: class name(s) the checkpoint must hold, else a ValueError (see `check_resumable`)."""
    if load_state(run_dir) is None:
        return None
    if expect is not None:
        check_resumable(run_dir, expect, command)
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
