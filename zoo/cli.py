"""`python -m zoo`: prepare, train, evaluate, sample, density.

Every subcommand has --help. TensorFlow's C++ start-up logging is sent to
/dev/null (Python's own errors and warnings still reach the terminal); set
ZOO_DEBUG=1 to see everything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import warnings

DEFAULT_MODEL = "iam-prediction"


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


# ---------------------------------------------------------------- prepare


def cmd_prepare(args) -> None:
    from zoo.data.cache import prepare, resolve_iam_dir

    data_dir = resolve_iam_dir(args.data)
    data = prepare(data_dir, args.out, progress=not args.quiet)
    print(json.dumps({"cache": args.out, "megabytes": round(os.path.getsize(args.out) / 1e6, 1), **data.report}, indent=1))


# ---------------------------------------------------------------- train


def _model_card(name: str, config: dict, meta: dict) -> str:
    ev = meta.get("evaluation", {})
    return f"""# {name}

Handwriting prediction network of Graves (2013, sec. 4): {config['num_layers']} skip-connected
LSTM layers of {config['units']} cells and a mixture of {config['num_mixtures']} bivariate
Gaussians with an end-of-stroke Bernoulli, predicting pen offsets one point at a time.

| | |
|---|---|
| data | IAM On-Line Handwriting Database, train on {', '.join(meta['train_splits'])} ({meta['train_lines']} lines) |
| early stopping / report split | {meta['validation_split']} ({ev.get('lines', '?')} lines) |
| NLL on {meta['validation_split']} | {ev.get('nll_nats_per_line', float('nan')):.1f} nats per line ({ev.get('nll_nats_per_point', float('nan')):.3f} per point); Graves 3x400: -1041.0 |
| SSE per point | {ev.get('sse_per_point', float('nan')):.3f} |
| training | {meta['epochs']} epochs of {meta['steps_per_epoch']} batches of {meta['batch_size']}, {meta['train_seconds'] / 60:.1f} min on {meta['hardware']} |
| optimiser | Graves RMSProp (eq. 38-45), lr {meta['learning_rate']:g}; derivatives clipped to [-{config['lstm_clip']:g}, {config['lstm_clip']:g}] (LSTM) and [-{config['output_clip']:g}, {config['output_clip']:g}] (output) |

Use: `python -m zoo sample --model {name} --out samples.svg`, or in Python
`zoo.presets.from_preset("{name}")`. The IAM-OnDB licence (non-commercial
research) applies to models trained on it.
"""


def cmd_train(args) -> None:
    import keras
    import numpy as np

    from zoo import backend, presets
    from zoo.data.cache import TRAIN_SPLITS, VALIDATION_SPLIT, load_handwriting
    from zoo.data.pipeline import LineBatches
    from zoo.evaluation import evaluate_predictor
    from zoo.models.predictor import HandwritingPredictor
    from zoo.render.figures import plot_loss_curve
    from zoo.training import trainer
    from zoo.training.graves_rmsprop import GravesRMSprop

    keras.utils.set_random_seed(args.seed)
    jit = backend.default_jit_compile() if args.xla is None else args.xla
    data = load_handwriting(args.data)
    train_raw = data.lines("train")
    if args.max_train_lines:
        train_raw = train_raw[: args.max_train_lines]
    val_raw = data.lines(args.validation_split)
    if args.max_val_lines:
        val_raw = val_raw[: args.max_val_lines]

    model = trainer.resume(args.out, jit_compile=jit)
    if model is None:
        mean, std = data.normalization("train")
        model = HandwritingPredictor(
            units=args.units,
            num_layers=args.layers,
            num_mixtures=args.mixtures,
            offset_mean=mean,
            offset_std=std,
        )
        model.build()
        model.compile(optimizer=GravesRMSprop(learning_rate=args.learning_rate), jit_compile=jit)
    else:
        print(f"resuming from {os.path.join(args.out, trainer.CHECKPOINT)}", file=sys.stderr)
    # Compiled code (XLA, or any JAX function) is compiled again for every new
    # batch shape, so there lengths are padded to coarser steps.
    pad_to = args.pad_to or (128 if (jit or backend.name() == "jax") else 32)
    train_data = LineBatches(
        [model.normalize(ln) for ln in train_raw],
        args.batch_size,
        shuffle=True,
        seed=args.seed,
        steps_per_epoch=args.steps_per_epoch,
        pad_to=pad_to,
    )
    val_data = LineBatches([model.normalize(ln) for ln in val_raw], args.batch_size, shuffle=False, pad_to=pad_to)
    print(
        f"{len(train_raw)} training lines, {len(val_raw)} {args.validation_split} lines; "
        f"padding {100 * train_data.padding_fraction():.1f}%; {model.count_params():,} weights; "
        f"backend {backend.name()}, XLA {'on' if jit else 'off'}",
        file=sys.stderr,
    )
    try:
        # Keras' progress bar goes to stderr: stdout carries only the JSON result.
        with contextlib.redirect_stdout(sys.stderr):
            state = trainer.fit(
                model, train_data, val_data, args.out, epochs=args.epochs, patience=args.patience, time_budget=args.time_budget
            )
    except trainer.TrainingDiverged as exc:
        _fail(str(exc))
    # The preset gets the best validation epoch's weights.
    best = os.path.join(args.out, trainer.BEST_WEIGHTS)
    if os.path.isfile(best):
        model.load_weights(best)
    plot_loss_curve(state["history"], os.path.join(args.out, "loss.png"), reference=None)
    evaluation = evaluate_predictor(model, val_raw, batch_size=args.batch_size)
    points = int(sum(len(ln) - 1 for ln in train_raw))
    meta = {
        "model": "HandwritingPredictor",
        "data": "IAM On-Line Handwriting Database (lineStrokes-all, ascii-all, official splits)",
        "train_splits": [s for s in TRAIN_SPLITS if s in data.splits and len(data.splits[s])],
        "train_lines": len(train_raw),
        "train_points": points,
        "validation_split": args.validation_split,
        "evaluation": evaluation,
        "epochs": state["epoch"],
        "best_epoch": state.get("best_epoch"),
        "steps_per_epoch": train_data.steps_per_epoch,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "train_seconds": round(state.get("train_seconds", 0.0), 1),
        "stop_reason": state.get("stop_reason"),
        "hardware": args.hardware or f"{backend.name()} backend, {'GPU' if backend.has_gpu() else f'{os.cpu_count()}-core CPU'}",
        "backend": backend.name(),
        "xla": bool(jit),
        "history": state["history"],
        "normalization": {"offset_mean": list(model.offset_mean), "offset_std": list(model.offset_std)},
        "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    preset_dir = args.preset_out or os.path.join(args.out, "preset")
    name = os.path.basename(os.path.normpath(preset_dir))
    presets.save_preset(model, preset_dir, meta, _model_card(name, model.get_config(), meta))
    print(json.dumps({"preset": preset_dir, **evaluation, "epochs": state["epoch"], "train_seconds": meta["train_seconds"]}, indent=1))


# ---------------------------------------------------------------- evaluate


def cmd_evaluate(args) -> None:
    from zoo.data.cache import load_handwriting
    from zoo.evaluation import evaluate_predictor
    from zoo.presets import from_preset

    model = from_preset(args.model)
    data = load_handwriting(args.data)
    try:
        lines = data.lines(args.split)
    except KeyError as exc:
        _fail(str(exc.args[0]))
    if not lines:
        _fail(f"split {args.split!r} has no lines in {args.data} (its forms are absent from this copy)")
    result = evaluate_predictor(model, lines, batch_size=args.batch_size, progress=not args.quiet)
    print(json.dumps({"model": args.model, "split": args.split, **result}, indent=1))


# ---------------------------------------------------------------- sample / density


def cmd_sample(args) -> None:
    from zoo.presets import from_preset
    from zoo.render import save_drawing
    from zoo.sampling.handwriting import sample_unconditional

    model = from_preset(args.model)
    t0 = time.time()
    offsets = sample_unconditional(model, steps=args.steps, count=args.count, bias=args.bias, seed=args.seed)
    seconds = time.time() - t0
    save_drawing(offsets, args.out)
    print(json.dumps({"out": args.out, "count": args.count, "steps": args.steps, "seconds": round(seconds, 2)}))


def cmd_density(args) -> None:
    from zoo.data.cache import load_handwriting
    from zoo.presets import from_preset
    from zoo.render.figures import plot_predictive_density
    from zoo.sampling.handwriting import predictive_params

    model = from_preset(args.model)
    data = load_handwriting(args.data)
    try:
        i = data.index(args.line) if args.line else int(data.split_indices("testset_v")[0])
    except KeyError as exc:
        _fail(str(exc.args[0]))
    line = data.line(i)
    plot_predictive_density(line, predictive_params(model, line), args.out, title=f"{data.ids[i]}: {data.texts[i]}")
    print(json.dumps({"out": args.out, "line": data.ids[i]}))


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m zoo", description="Graves (2013) sequence generation model zoo.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("prepare", help="read the IAM-OnDB archives into one compressed cache", description=cmd_prepare.__doc__)
    s.add_argument("--data", required=True, help="folder with lineStrokes-all.tar.gz, ascii-all.tar.gz and splits/ (or their extracted folders)")
    s.add_argument("--out", default=os.path.join("cache", "iam-ondb.npz"), help="cache file to write (default: %(default)s)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_prepare)

    s = sub.add_parser("train", help="train a handwriting prediction network (resumes if --out has a checkpoint)")
    s.add_argument("model", nargs="?", default="prediction", choices=["prediction"], help="what to train (default: %(default)s)")
    s.add_argument("--data", required=True, help="IAM-OnDB folder or a cache made by `prepare`")
    s.add_argument("--out", required=True, help="run folder: checkpoints, logs, loss.png and preset/")
    s.add_argument("--preset-out", help="write the finished preset here (default: OUT/preset)")
    s.add_argument("--units", type=int, default=400, help="LSTM cells per layer (default: %(default)s)")
    s.add_argument("--layers", type=int, default=3, help="stacked LSTM layers (default: %(default)s)")
    s.add_argument("--mixtures", type=int, default=20, help="mixture components M (default: %(default)s)")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--epochs", type=int, default=1000, help="upper bound; early stopping ends the run first")
    s.add_argument("--steps-per-epoch", type=int, help="batches per epoch, i.e. between checkpoints (default: one pass)")
    s.add_argument("--patience", type=int, default=10, help="epochs without improvement on the validation split before stopping")
    s.add_argument("--learning-rate", type=float, default=1e-4)
    s.add_argument("--time-budget", type=float, help="stop after this many seconds of training (checked every epoch)")
    s.add_argument("--validation-split", default="testset_v")
    s.add_argument("--max-train-lines", type=int, help="use only the first N training lines (quick runs)")
    s.add_argument("--max-val-lines", type=int, help="use only the first N validation lines (quick runs)")
    xla = s.add_mutually_exclusive_group()
    xla.add_argument("--xla", dest="xla", action="store_true", default=None, help="XLA-compile the train step (default on a GPU)")
    xla.add_argument("--no-xla", dest="xla", action="store_false", help="plain graph mode (default on a CPU)")
    s.add_argument("--pad-to", type=int, help="pad batch lengths to a multiple of this (default: 32, or 128 under XLA/JAX)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--hardware", help="describe the machine in the preset's metadata")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="log-loss of a model on an official split, as JSON")
    s.add_argument("--model", default=DEFAULT_MODEL, help="preset name or folder (default: %(default)s)")
    s.add_argument("--data", required=True, help="IAM-OnDB folder or a cache made by `prepare`")
    s.add_argument("--split", default="testset_v", help="trainset, testset_v, testset_t, testset_f, train or all")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("sample", help="draw unconditional handwriting samples to SVG or PNG")
    s.add_argument("--model", default=DEFAULT_MODEL, help="preset name or folder (default: %(default)s)")
    s.add_argument("--steps", type=int, default=700, help="pen points per sample (default: %(default)s)")
    s.add_argument("--count", type=int, default=4, help="samples, drawn together in one batch")
    s.add_argument("--bias", type=float, default=0.0, help="sampling bias b of eq. 61-62 (0: unbiased)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="FILE.svg or FILE.png")
    s.set_defaults(func=cmd_sample)

    s = sub.add_parser("density", help="figure of the predictive density along a real line (Graves Fig. 10)")
    s.add_argument("--model", default=DEFAULT_MODEL)
    s.add_argument("--data", required=True, help="IAM-OnDB folder or a cache made by `prepare`")
    s.add_argument("--line", help="line id such as a02-050-03 (default: the first testset_v line)")
    s.add_argument("--out", required=True, help="FILE.png or FILE.svg")
    s.set_defaults(func=cmd_density)
    return p


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    _silence_native_stderr()
    from zoo.data.iam import IAMDataError

    try:
        args.func(args)
    except (FileNotFoundError, IAMDataError, ValueError) as exc:
        # These carry a message that names the problem and its fix.
        if os.environ.get("ZOO_DEBUG"):
            raise
        _fail(str(exc))

