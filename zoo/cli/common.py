"""What every command module of the CLI shares: the default presets, quiet native
logging, the one way to fail, argparse types, picture paths, and the training
run's common ending (best weights, loss.png, the run record).

Imports here stay standard-library only at module level: `zoo write` and `zoo read`
on the onnxruntime path must not pull in TensorFlow.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings

DEFAULT_MODEL = "iam-prediction"
DEFAULT_WRITER = "iam-synthesis"
DEFAULT_RECOGNIZER = "iam-recognizer"


def _silence_native_stderr() -> None:
    """Point file descriptor 2 at /dev/null but keep Python's sys.stderr on the terminal."""
    if os.environ.get("ZOO_DEBUG"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        sys.stderr = os.fdopen(saved, "w", buffering=1)
    except OSError:
        return
    warnings.filterwarnings("ignore", module=r"(tensorflow|tensorflow_probability|tf_keras|keras|absl)")
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


# ---------------------------------------------------------------- argparse types and paths


def _sampling_bias(text: str) -> float:
    """argparse type of --bias (eq. 61-62): the driver's rule, a finite number >= 0 (NaN or a negative bias draws NaN strokes)."""
    from zoo.sampling.driver import check_bias  # numpy only: the parser stays light

    try:
        return check_bias(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _whole_number(minimum: int, too_small: str):
    """An argparse type: a whole number >= ``minimum``; ``too_small`` (with {text}) says what else to give."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(too_small.format(text=text))
        return value

    return parse


_positive_int = _whole_number(1, "{text} must be at least 1")
# --rewrites: how many times a failed line is written again (0: never).
_rewrite_count = _whole_number(0, "{text} is not a count of rewrites: give 0 (never write a line again) or a small number such as 2")
# --beam: 0 (greedy decoding) or a CTC beam of that many prefixes.
_beam_width = _whole_number(0, "{text} is not a beam width: give 0 for greedy decoding or a number of prefixes such as 8")


def _ema_momentum(text: str) -> float:
    """argparse type of --ema: a momentum strictly between 0 and 1 (the average's weight on its past)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a momentum: give a number between 0 and 1 such as 0.999 (averages about the last 1000 batches)")
    return value


def _check_picture_path(path: str, flag: str = "--out", formats=(".svg", ".png")) -> None:
    """Refuse a picture path that cannot be written before any model is loaded or any point sampled."""
    if not path.lower().endswith(formats):
        _fail(f"{flag} {path}: name the picture FILE{' or FILE'.join(formats)} (the format follows the extension)")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        _fail(f"{flag} {path}: the folder {folder} does not exist")


# ---------------------------------------------------------------- training (handwriting and text)


def _fit_keeping_best(model, train_data, val_data, args, unit: str) -> dict:
    """`trainer.fit` for any model kind; then the best validation epoch's weights and loss.png."""
    from zoo.render.figures import plot_loss_curve
    from zoo.training import trainer

    try:
        # Keras' progress bar goes to stderr: stdout carries only the JSON result.
        with contextlib.redirect_stdout(sys.stderr):
            state = trainer.fit(model, train_data, val_data, args.out, epochs=args.epochs, patience=args.patience, time_budget=args.time_budget)
    except trainer.TrainingDiverged as exc:
        _fail(str(exc))
    best = os.path.join(args.out, trainer.BEST_WEIGHTS)
    if os.path.isfile(best):
        model.load_weights(best)
    plot_loss_curve(state["history"], os.path.join(args.out, "loss.png"), reference=None, unit=unit)
    return state


def _run_record(state: dict, args, jit: bool) -> dict:
    """The metadata every trained preset records about its run."""
    from zoo import backend

    return {
        "epochs": state["epoch"],
        "best_epoch": state.get("best_epoch"),
        "train_seconds": round(state.get("train_seconds", 0.0), 1),
        "stop_reason": state.get("stop_reason"),
        "hardware": args.hardware or f"{backend.name()} backend, {'GPU' if backend.has_gpu() else f'{os.cpu_count()}-core CPU'}",
        "backend": backend.name(),
        "xla": bool(jit),
        "history": state["history"],
        "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
