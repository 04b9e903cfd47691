"""Handwriting models: `zoo train` (prediction, synthesis, recognizer), `zoo evaluate`
(log-loss on a split, a recognizer's CER/WER, a synthesis model's legibility), `zoo sample`
and `zoo density`.

`train`, `evaluate` and `sample` also serve the text models: a named text config or a
text preset goes on to zoo/cli/text.py, which adds its own flags to these parsers.
"""

from __future__ import annotations

import json
import os
import sys
import time

from zoo.cli import text
from zoo.cli.common import (
    DEFAULT_MODEL,
    _beam_width,
    _check_picture_path,
    _ema_momentum,
    _fail,
    _fit_keeping_best,
    _positive_int,
    _run_record,
    _sampling_bias,
    _whole_number,
)

# ---------------------------------------------------------------- train


INIT_RECORD = "initialized_from.json"  # in a run folder started with --init-from


def _init_from_preset(name_or_path: str, model_class):
    """A preset's model to train further, and what the new preset's metadata says about it."""
    from zoo.presets import from_preset, preset_path

    try:
        folder = preset_path(name_or_path)
        model = from_preset(folder)
    except (OSError, ValueError) as exc:
        _fail(f"--init-from {name_or_path}: cannot load the preset ({exc}); give a preset folder or a shipped preset's name")
    if not isinstance(model, model_class):
        _fail(f"--init-from {name_or_path} holds a {type(model).__name__}, not a {model_class.__name__}: start from a preset of the same kind")
    record = {"preset": preset_label(folder)}
    meta_path = os.path.join(folder, "metadata.json")
    if os.path.isfile(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        # The earlier training, so that the new preset's totals stay honest; its own earlier legs
        # come along (a chain: the whole ledger of a preset trained over several sessions).
        record.update(leg_record(meta))
    return model, record


def preset_label(folder: str) -> str:
    """How a ledger names the preset a leg started from: a shipped preset by its name (the metadata
    travels with the download, where this machine's path means nothing), any other folder by its path."""
    from zoo import hub

    name = os.path.basename(os.path.normpath(folder))
    if any(os.path.samefile(copy, folder) for _, copy in hub.local_sources(name)):
        return name
    return os.path.abspath(folder)


LEG_KEYS = ("epochs", "train_seconds", "learning_rate", "evaluation", "created", "hardware", "backend", "xla",
            "batch_size", "steps_per_epoch", "weight_average", "best_epoch", "stop_reason")


def leg_record(meta: dict) -> dict:
    """What a preset trained further records of the training that made ``meta`` (a preset's metadata):
    its passes, hours, rate, hardware, batches and validation curve, with its own earlier legs nested
    (a chain: the whole ledger of a preset trained over several sessions and machines)."""
    record = {k: meta[k] for k in LEG_KEYS if meta.get(k) is not None}
    if meta.get("history"):
        record["history"] = [{k: row[k] for k in ("epoch", "loss", "val_loss", "train_seconds") if k in row} for row in meta["history"]]
    if meta.get("initialized_from"):
        record["initialized_from"] = meta["initialized_from"]
    return record


def _rebuilt(model, **changes):
    """The same network and weights with other training-only settings (dropout, weight noise), so a
    preset can be fine-tuned with them. Weights are matched by path; new ones (adaptive noise's
    log-sigmas) keep their initial values."""
    config = model.get_config()
    if all(config.get(k) == v for k, v in changes.items()):
        return model
    rebuilt = type(model).from_config({**config, **changes})
    rebuilt.build()
    old = {v.path: v for v in model.weights}
    for v in rebuilt.weights:
        if v.path in old:
            v.assign(old[v.path])
    return rebuilt


def _weight_noise_settings(args, recognizer: bool, train_lines: int) -> dict:
    """The handwriting networks' weight noise from --weight-noise / --adaptive-weight-noise (none by default)."""
    if recognizer:
        if args.weight_noise or args.adaptive_weight_noise:
            _fail("--weight-noise and --adaptive-weight-noise apply to prediction, synthesis and text models; the recognizer has --dropout")
        return {}
    if args.weight_noise is not None and args.weight_noise < 0:
        _fail(f"--weight-noise must be >= 0, got {args.weight_noise}")
    return {"weight_noise": args.weight_noise or 0.0, "adaptive_noise": bool(args.adaptive_weight_noise), "train_lines": train_lines}


def _warn_ignored_shape_flags(args, model, why: str) -> None:
    """Name the shape flags a resumed (or --init-from) run cannot apply: its model is already built."""
    config = model.get_config()
    ignored = [
        f"{flag} {value} (the model has {config[key]})"
        for flag, key, value in (
            ("--units", "units", args.units),
            ("--layers", "num_layers", args.layers),
            ("--mixtures", "num_mixtures", args.mixtures),
            ("--window-components", "window_components", args.window_components),
        )
        if value is not None and key in config and config[key] != value
    ]
    if why == "resuming" and args.init_from:
        ignored.append(f"--init-from {args.init_from}")
    if ignored:
        print(f"warning: {', '.join(ignored)} ignored: {why} keeps the model as it is; give a new --out to train another", file=sys.stderr)


def _optimizer(model_class, learning_rate: float, ema: float | None = None):
    """Graves' RMSProp (eq. 38-45) for the handwriting networks of the paper; Adam for the recognizer (CTC).
    The rate comes from the flag or the named config's recipe (zoo/configs.py). ``ema``: the
    optimiser also keeps a moving average of the weights with this momentum (Polyak averaging),
    which validation, the best weights and the preset use (zoo/training/trainer.py)."""
    import keras

    averaging = {"use_ema": True, "ema_momentum": ema} if ema else {}
    if model_class.__name__ == "HandwritingRecognizer":
        return keras.optimizers.Adam(learning_rate, clipnorm=10.0, **averaging)
    from zoo.training.graves_rmsprop import GravesRMSprop

    return GravesRMSprop(learning_rate=learning_rate, **averaging)


def _fit_on_several_processes(model, train_data, val_data, args, unit: str):
    """`_fit_keeping_best` for a run of several processes (JAX; zoo/distribute.py).

    All of them train in step (only the chief writes files); then each leaves the
    distributed runtime and the chief goes on alone with a copy of the weights: the best
    epoch's, and loss.png. Returns (run state, the chief's model), or (None, None) on the others."""
    import contextlib

    from zoo import distribute
    from zoo.render.figures import plot_loss_curve
    from zoo.training import trainer

    try:
        with contextlib.redirect_stdout(sys.stderr):  # Keras' progress bar: stdout carries only the JSON result
            state = trainer.fit(model, train_data, val_data, args.out, epochs=args.epochs, patience=args.patience, time_budget=args.time_budget)
    except trainer.TrainingDiverged as exc:
        _fail(str(exc))
    model = distribute.finish(model)
    if model is None:
        return None, None
    best = os.path.join(args.out, trainer.BEST_WEIGHTS)
    if os.path.isfile(best):
        model.load_weights(best)
    plot_loss_curve(state["history"], os.path.join(args.out, "loss.png"), reference=None, unit=unit)
    return state, model


def cmd_train(args) -> None:
    from zoo.configs import HANDWRITING_MODELS, TEXT_MODELS, apply_recipe

    if args.model in TEXT_MODELS:
        return text.cmd_train_text(args)
    if not args.data:
        _fail("--data is required to train a handwriting model: an IAM-OnDB folder or a cache made by `prepare`")
    import keras

    from zoo import backend, distribute, model_card, presets
    from zoo.data.alphabet import Alphabet
    from zoo.data.cache import TRAIN_SPLITS, load_handwriting
    from zoo.data.pipeline import batches_for
    from zoo.evaluation import evaluate_handwriting, evaluate_recognizer
    from zoo.models import HandwritingPredictor, HandwritingRecognizer, HandwritingSynthesizer
    from zoo.training import trainer

    model_class = {"prediction": HandwritingPredictor, "synthesis": HandwritingSynthesizer, "recognizer": HandwritingRecognizer}[args.model]
    recognizer = model_class is HandwritingRecognizer
    # Flags left out take the named config's recipe (zoo/configs.py); a resumed run keeps its own
    # (annealed) rate and a fine-tuned preset its dropout unless given here.
    given_learning_rate, given_dropout = args.learning_rate, args.dropout
    apply_recipe(args, args.model)
    if recognizer:
        _weight_noise_settings(args, recognizer, 0)  # refuses the noise flags
    # A run folder of another kind is refused before any data is read or any epoch trained.
    trainer.check_resumable(args.out, model_class.__name__, f"train {args.model}")
    plan = distribute.setup_from_args(args)  # --distribute: before the backend computes anything
    keras.utils.set_random_seed(args.seed)
    jit = backend.default_jit_compile() if args.xla is None else args.xla
    data = load_handwriting(args.data)
    train_idx = data.split_indices("train")[: args.max_train_lines]
    val_idx = data.split_indices(args.validation_split)[: args.max_val_lines]
    train_raw, val_raw = [data.line(i) for i in train_idx], [data.line(i) for i in val_idx]
    train_texts, val_texts = [data.texts[i] for i in train_idx], [data.texts[i] for i in val_idx]

    model = trainer.resume(args.out, jit_compile=jit, new_learning_rate=given_learning_rate)
    initialized_from = None
    if model is None and args.init_from:
        # Fine-tune (or continue) a preset: its weights, alphabet and normalisation, a fresh optimiser.
        model, initialized_from = _init_from_preset(args.init_from, model_class)
        if args.units and args.units != model.units and not recognizer:
            # A wider network from a narrower preset, computing the same function to start with.
            from zoo.training.widen import widen

            narrow = model.units
            try:
                model = widen(model, args.units)
            except ValueError as exc:
                _fail(str(exc))
            initialized_from["widened"] = {"from_units": narrow, "to_units": args.units}
            print(f"widened {args.init_from} from {narrow} to {args.units} units per layer: the new units start silent (zoo/training/widen.py)", file=sys.stderr)
        if given_dropout is not None:
            if not recognizer:
                _fail(f"--dropout applies to the recognizer only; {model_class.__name__} has no dropout")
            model = _rebuilt(model, dropout=given_dropout)
        if args.weight_noise is not None or args.adaptive_weight_noise:
            model = _rebuilt(model, **_weight_noise_settings(args, recognizer, len(train_raw)))
        model.compile(optimizer=_optimizer(model_class, args.learning_rate, args.ema), jit_compile=jit)
        print(f"starting from the weights of {args.init_from}", file=sys.stderr)
        _warn_ignored_shape_flags(args, model, "--init-from")
    elif model is None:
        mean, std = data.normalization("train")
        shape = HANDWRITING_MODELS[args.model]
        if recognizer:
            # The synthesis alphabet: both are built from the same training transcriptions.
            model = HandwritingRecognizer(
                Alphabet.from_texts(train_texts), units=args.units or shape["units"], num_layers=args.layers or shape["num_layers"], dropout=args.dropout, offset_mean=mean, offset_std=std
            )
        else:
            common = dict(
                units=args.units or shape["units"], num_layers=args.layers or shape["num_layers"], num_mixtures=args.mixtures or shape["num_mixtures"],
                offset_mean=mean, offset_std=std, **_weight_noise_settings(args, recognizer, len(train_raw)),
            )
            if args.model == "synthesis":
                model = HandwritingSynthesizer(Alphabet.from_texts(train_texts), window_components=args.window_components or shape["window_components"], **common)
            else:
                model = HandwritingPredictor(**common)
        model.build()
        model.compile(optimizer=_optimizer(model_class, args.learning_rate, args.ema), jit_compile=jit)
    else:
        print(f"resuming from {os.path.join(args.out, trainer.CHECKPOINT)}", file=sys.stderr)
        _warn_ignored_shape_flags(args, model, "resuming")
    # Compiled code (XLA, or any JAX function) is compiled again for every new
    # batch shape, so there lengths are padded to coarser steps.
    pad_to = args.pad_to or (128 if (jit or backend.name() == "jax") else 32)
    train_data = batches_for(
        model, train_raw, train_texts, batch_size=args.batch_size, pad_to=pad_to, shuffle=True, seed=args.seed, steps_per_epoch=args.steps_per_epoch,
        augment=recognizer and args.augment,
    )
    val_data = batches_for(model, val_raw, val_texts, batch_size=args.batch_size, pad_to=pad_to, shuffle=False)
    if initialized_from is not None and args.optimizer_warmup and args.epochs > 0 and not recognizer:
        if plan is not None:
            print("--optimizer-warmup is skipped with --distribute: the optimiser starts fresh", file=sys.stderr)
        else:
            # The preset's weights with a fresh optimiser: estimate its running averages first (trainer.warm_up_optimizer).
            print(f"estimating the optimiser's running averages from {args.optimizer_warmup} batches at learning rate 0", file=sys.stderr)
            started = time.perf_counter()
            try:
                initialized_from["optimizer_warmup_batches"] = trainer.warm_up_optimizer(model, train_data, args.optimizer_warmup)
            except trainer.TrainingDiverged as exc:
                _fail(str(exc))
            initialized_from["optimizer_warmup_seconds"] = round(time.perf_counter() - started, 1)  # not in train_seconds
    if initialized_from is not None:  # read back when a resumed run writes its preset
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, INIT_RECORD), "w") as f:
            json.dump(initialized_from, f, indent=1)
    # Several devices: this process's lines of every global batch, and TensorFlow's replica steps.
    train_data, val_data = distribute.shard(train_data, training=True), distribute.shard(val_data)
    distribute.prepare(model)
    print(
        f"{len(train_raw)} training lines, {len(val_raw)} {args.validation_split} lines; "
        f"padding {100 * train_data.padding_fraction():.1f}%; {model.count_params():,} weights; "
        f"backend {backend.name()}, XLA {'on' if jit else 'off'}" + (f", data-parallel over {plan.devices} devices in {plan.num_processes} process(es)" if plan else ""),
        file=sys.stderr,
    )
    unit = "CTC nats per line" if recognizer else "nats per line"
    if plan is not None and plan.num_processes > 1:
        state, model = _fit_on_several_processes(model, train_data, val_data, args, unit)
        if model is None:
            return  # not the chief: the chief writes the preset
    else:
        state = _fit_keeping_best(model, train_data, val_data, args, unit=unit)
        model = distribute.finish(model)  # one device from here: evaluation and the preset
    if recognizer:
        evaluation = evaluate_recognizer(model, val_raw, val_texts, batch_size=args.batch_size)
    else:
        evaluation = evaluate_handwriting(model, val_raw, val_texts, batch_size=args.batch_size)
    points = int(sum(len(ln) - 1 for ln in train_raw))
    meta = {
        "model": type(model).__name__,
        "data": "IAM On-Line Handwriting Database (lineStrokes-all, ascii-all, official splits)",
        "train_splits": [s for s in TRAIN_SPLITS if s in data.splits and len(data.splits[s])],
        "train_lines": len(train_raw),
        "train_points": points,
        "validation_split": args.validation_split,
        "evaluation": evaluation,
        "steps_per_epoch": train_data.steps_per_epoch,
        "batch_size": args.batch_size,
        "learning_rate": trainer.learning_rate(model),
        **({"weight_average": {"ema_momentum": float(model.optimizer.ema_momentum)}} if trainer.uses_weight_average(model) else {}),
        "normalization": {"offset_mean": list(model.offset_mean), "offset_std": list(model.offset_std)},
        **_run_record(state, args, jit),
        **({"distribution": plan.describe()} if plan else {}),
    }
    if initialized_from or os.path.isfile(os.path.join(args.out, INIT_RECORD)):
        meta["initialized_from"] = initialized_from or json.load(open(os.path.join(args.out, INIT_RECORD)))
    preset_dir = args.preset_out or os.path.join(args.out, "preset")
    name = os.path.basename(os.path.normpath(preset_dir))
    presets.save_preset(model, preset_dir, meta, model_card.card(name, model.get_config(), meta))
    if args.model == "synthesis":
        # Named styles for primed writing (sec. 5.5): real training lines of different writers.
        styles, writers = {}, set()
        for i in train_idx:
            writer = data.ids[i].split("-")[0]
            if writer not in writers and 25 <= len(data.texts[i]) <= 60 and not model.alphabet.unknown(data.texts[i]):
                writers.add(writer)
                styles[data.ids[i]] = (data.line(i), data.texts[i])
            if len(styles) == args.styles:
                break
        presets.save_styles(preset_dir, styles)
    print(json.dumps({"preset": preset_dir, **evaluation, "epochs": state["epoch"], "train_seconds": meta["train_seconds"]}, indent=1))


# ---------------------------------------------------------------- evaluate


def cmd_evaluate(args) -> None:
    from zoo.evaluation import evaluate_handwriting
    from zoo.presets import from_preset

    model = from_preset(args.model)
    if hasattr(model, "vocabulary"):
        return text.evaluate(model, args)
    if getattr(model, "task", None) == "recognition":
        return _evaluate_recognizer(model, args)
    if hasattr(model, "alphabet") and args.text_file:
        return _evaluate_legibility(model, args)
    if args.text_file or not args.data:
        _fail(f"{args.model} is a handwriting model: evaluate it with --data (IAM-OnDB folder or cache), not --text-file")
    data, idx = _split(args)
    lines, texts = [data.line(i) for i in idx], [data.texts[i] for i in idx]
    result = evaluate_handwriting(model, lines, texts, batch_size=args.batch_size, progress=not args.quiet)
    print(json.dumps({"model": args.model, "split": args.split, **result}, indent=1))
    if args.record:
        from zoo.model_card import record_handwriting_evaluation

        print(f"recorded in the metadata; card: {record_handwriting_evaluation(args.model, model, data, args.split, result, args.data)}", file=sys.stderr)


def _split(args):
    """The prepared data of --data and the indices of --split's lines, or a clear error."""
    from zoo.data.cache import load_handwriting

    data = load_handwriting(args.data)
    try:
        idx = data.split_indices(args.split)
    except KeyError as exc:
        _fail(str(exc.args[0]))
    if not len(idx):
        _fail(f"split {args.split!r} has no lines in {args.data} (its forms are absent from this copy)")
    return data, idx


def _evaluate_recognizer(model, args) -> None:
    """CER and WER of a recognizer on a split of real lines (edit distances summed over the split)."""
    from zoo.evaluation import evaluate_recognizer

    if not args.data:
        _fail(f"{args.model} is a recognizer: evaluate it on real lines with --data (IAM-OnDB folder or cache) --split NAME")
    data, idx = _split(args)
    t0 = time.time()
    result = evaluate_recognizer(model, [data.line(i) for i in idx], [data.texts[i] for i in idx], beam_width=args.beam, batch_size=args.batch_size)
    result = {"model": args.model, "split": args.split, **result, "seconds": round(time.time() - t0, 1)}
    print(json.dumps(result, indent=1))
    if args.record:
        from zoo.model_card import record

        from zoo.model_card import _stamp, recognizer_check

        key = f"{args.split}_{result['decoding'].replace(' ', '')}"
        entry = {
            **{k: v for k, v in result.items() if k != "model"},
            "check": recognizer_check(model, [data.line(i) for i in idx], [data.texts[i] for i in idx], [data.ids[i] for i in idx]),
            "command": f"python -m zoo evaluate --model {args.model} --data {args.data} --split {args.split}" + (f" --beam {args.beam}" if args.beam else "") + " --record",
            "measured": _stamp(),
        }
        print(f"recorded in the metadata; card: {record(args.model, key, entry)}", file=sys.stderr)


def _evaluate_legibility(model, args) -> None:
    """Write every line of --text-file with a synthesis model, read it back with a recognizer: CER and WER,
    beside the recognizer's own CER on real lines, and a control with each line's words shuffled."""
    from zoo.presets import from_preset, load_metadata, preset_path
    from zoo.reading import legibility
    from zoo.sampling.driver import WRITE_BIAS

    with open(args.text_file, encoding="utf-8") as f:
        lines = [" ".join(ln.split()) for ln in f if ln.strip()]
    if not lines:
        _fail(f"{args.text_file} holds no text: give one sentence per line")
    try:
        recognizer = from_preset(args.recognizer)
    except (OSError, ValueError) as exc:
        _fail(f"--recognizer {args.recognizer}: {exc}; train one with `python -m zoo train recognizer --data DIR --out RUN`")
    if getattr(recognizer, "task", None) != "recognition":
        _fail(f"--recognizer {args.recognizer} is a {type(recognizer).__name__}, not a recognizer")
    bias = WRITE_BIAS if args.bias is None else args.bias
    t0 = time.time()
    result = legibility(model, recognizer, lines, bias=bias, seed=args.seed, style=args.style, beam_width=args.beam)
    real = load_metadata(preset_path(args.recognizer)).get("evaluation", {})
    print(json.dumps({
        "model": args.model, "recognizer": args.recognizer, "text_file": args.text_file, "bias": bias, "seed": args.seed, "style": args.style,
        **result, "real_cer": real.get("cer"), "real_split": real.get("split", "testset_v"), "seconds": round(time.time() - t0, 1),
    }, indent=1))


# ---------------------------------------------------------------- sample / density


def _is_text_preset(name: str) -> bool:
    """Whether a preset holds a text model, from its config.json alone (nothing is loaded)."""
    from zoo.presets import CONFIG, preset_path

    try:
        with open(os.path.join(preset_path(name), CONFIG)) as f:
            return json.load(f).get("class_name") == "LanguageModel"
    except (OSError, ValueError, AttributeError):
        return False  # from_preset says what is wrong with it


def cmd_sample(args) -> None:
    from zoo.presets import from_preset
    from zoo.render import save_drawing
    from zoo.sampling.handwriting import sample_unconditional

    if not _is_text_preset(args.model):  # handwriting: check where the picture goes before sampling it
        if not args.out:
            _fail("--out FILE.svg or FILE.png is required for handwriting samples")
        _check_picture_path(args.out)
    model = from_preset(args.model)
    if hasattr(model, "vocabulary"):
        return text.sample(model, args)
    if not args.out:
        _fail("--out FILE.svg or FILE.png is required for handwriting samples")
    t0 = time.time()
    offsets = sample_unconditional(model, steps=args.steps, count=args.count, bias=args.bias, seed=args.seed, backend=args.backend, precision=args.precision)
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


# ---------------------------------------------------------------- parsers


def add_parsers(sub) -> None:
    from zoo.configs import TEXT_MODELS
    from zoo.sampling.driver import WRITE_BIAS  # numpy only: the parser stays light

    text_models = "; ".join(f"{k}: {v['help']}" for k, v in TEXT_MODELS.items())
    s = sub.add_parser(
        "train",
        help="train a handwriting or text network (resumes if --out has a checkpoint)",
        description=f"Handwriting: prediction, synthesis (need --data). Text (need --train-file): {text_models}.",
    )
    s.add_argument(
        "model", nargs="?", default="prediction", choices=["prediction", "synthesis", "recognizer", *TEXT_MODELS], help="what to train (default: %(default)s)"
    )
    s.add_argument("--data", help="handwriting: IAM-OnDB folder or a cache made by `prepare`")
    s.add_argument("--out", required=True, help="run folder: checkpoints, logs, loss.png and preset/")
    s.add_argument("--preset-out", help="write the finished preset here (default: OUT/preset)")
    s.add_argument("--units", type=int, help="LSTM cells per layer (default: 400 for handwriting, the named config's for text)")
    s.add_argument("--layers", type=int, help="stacked LSTM layers (default: 3 for handwriting, the named config's for text)")
    s.add_argument("--mixtures", type=int, help="mixture components M (default: 20; a resumed run keeps its own)")
    s.add_argument("--window-components", type=int, help="synthesis: Gaussians K of the soft window (default: 10; a resumed run keeps its own)")
    s.add_argument("--styles", type=int, default=6, help="synthesis: real lines stored with the preset as named styles")
    s.add_argument("--batch-size", type=int, help="lines (text: streams) per batch (default: the named config's recipe, 32)")
    s.add_argument("--epochs", type=int, default=1000, help="upper bound; early stopping ends the run first")
    s.add_argument("--steps-per-epoch", type=int, help="batches per epoch, i.e. between checkpoints (default: the recipe's, else one pass)")
    s.add_argument("--patience", type=int, default=10, help="epochs without improvement on the validation split before stopping")
    s.add_argument(
        "--init-from",
        metavar="PRESET",
        help="handwriting: start a new run from a preset's weights (fine-tuning, or continuing a shipped model) instead of from scratch; "
        "with a larger --units, a wider network that starts computing what the preset did (e.g. 3x400 from the 3x128)",
    )
    s.add_argument(
        "--optimizer-warmup", type=_whole_number(0, "{text} is not a count of batches: give 0 (off) or a number such as 20"), default=20, metavar="N",
        help="prediction and synthesis with --init-from: first run N batches at learning rate 0, so the fresh optimiser's running averages "
        "(Graves' RMSProp, eq. 39-40) are estimated before its first step moves the preset's weights (default 20; 0: off). "
        "Its seconds are recorded apart, not counted in --time-budget; skipped with --distribute",
    )
    s.add_argument("--learning-rate", type=float, help="default: the named config's recipe (zoo/configs.py: handwriting 1e-4 Graves RMSProp, recognizer 1e-3 Adam; text per config); when resuming, a given rate replaces the checkpoint's (annealing)")
    s.add_argument("--time-budget", type=float, help="stop after this many seconds of training in all, over resumed sessions too (checked after every batch)")
    s.add_argument("--validation-split", default="testset_v")
    s.add_argument("--max-train-lines", type=int, help="use only the first N training lines (quick runs)")
    s.add_argument("--max-val-lines", type=int, help="use only the first N validation lines (quick runs)")
    xla = s.add_mutually_exclusive_group()
    xla.add_argument("--xla", dest="xla", action="store_true", default=None, help="XLA-compile the train step (default on a GPU)")
    xla.add_argument("--no-xla", dest="xla", action="store_false", help="plain graph mode (default on a CPU)")
    s.add_argument("--pad-to", type=int, help="pad batch lengths to a multiple of this (default: 32, or 128 under XLA/JAX)")
    s.add_argument("--no-augment", dest="augment", action="store_false", help="recognizer: train on the lines as written (default: a random scale, slant and rotation of each line, drawn anew every pass)")
    s.add_argument("--dropout", type=float, help="recognizer: dropout on each BLSTM layer's inputs (default 0; with --init-from it replaces the preset's)")
    s.add_argument(
        "--ema", type=_ema_momentum, metavar="MOMENTUM",
        help="keep an exponential moving average of the weights (Polyak averaging; e.g. 0.999, about the last 1000 batches): "
        "validation, early stopping, the best weights and the preset use the average; a resumed run keeps its own",
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--hardware", help="describe the machine in the preset's metadata")
    d = s.add_argument_group(
        "several devices",
        "--batch-size stays the global batch, split by lines over the devices; the steps equal one device's (zoo/distribute.py). "
        "ZOO_CPU_DEVICES=N splits the CPU into N logical devices to try it.",
    )
    d.add_argument(
        "--distribute", choices=["data-parallel"],
        help="train on every local device (GPUs, TPUs, or logical CPUs): JAX keras.distribution.DataParallel, TensorFlow MirroredStrategy",
    )
    d.add_argument("--coordinator", metavar="HOST:PORT", help="JAX: several processes (hosts): process 0's address, the same for all")
    d.add_argument("--num-processes", type=_positive_int, metavar="N", help="JAX: how many processes train together")
    d.add_argument("--process-id", type=int, metavar="I", help="JAX: this process's index, 0 to N-1; process 0 writes the checkpoints and the preset")
    text.add_train_arguments(s)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="log-loss of a model on an official split or a text file, as JSON")
    s.add_argument("--model", default=DEFAULT_MODEL, help="preset name or folder (default: %(default)s)")
    s.add_argument("--data", help="handwriting: IAM-OnDB folder or a cache made by `prepare`")
    text.add_evaluate_arguments(s)
    s.add_argument("--split", default="testset_v", help="trainset, testset_v, testset_t, testset_f, train or all")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--beam", type=_beam_width, default=0, help="recognizers: CTC beam search of this many prefixes (default: 0, greedy decoding)")
    g = s.add_argument_group("legibility of a synthesis model (with --text-file)", "write every line of the file, read it back with --recognizer")
    g.add_argument("--recognizer", default="iam-recognizer", help="the recognizer that reads (default: %(default)s)")
    g.add_argument("--bias", type=_sampling_bias, help=f"sampling bias of the writing (default: {WRITE_BIAS}, as zoo write)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--style", help="a named style stored with the synthesis preset (default: its default style; 'none': unprimed)")
    s.add_argument(
        "--record", action="store_true",
        help="write the result (and the score of a small fixed subset, re-measured by the tests) into the preset's metadata.json "
        "under `evaluations`, then regenerate its README.md",
    )
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("sample", help="draw handwriting samples to SVG/PNG, or stream text from a text model")
    s.add_argument("--model", default=DEFAULT_MODEL, help="preset name or folder (default: %(default)s)")
    text.add_sample_arguments(s)
    s.add_argument("--steps", type=_positive_int, default=700, help="pen points per sample (default: %(default)s)")
    s.add_argument("--count", type=_positive_int, default=4, help="samples, drawn together in one batch")
    s.add_argument("--bias", type=_sampling_bias, default=0.0, help="sampling bias b >= 0 of eq. 61-62 (0: unbiased)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", help="FILE.svg or FILE.png (handwriting); text models also copy the sample here")
    s.add_argument("--backend", choices=["auto", "keras", "onnx"], default="auto", help="auto: onnxruntime when the preset carries a current ONNX export, else Keras")
    s.add_argument("--precision", choices=["float32", "int8"], default="float32", help="int8: onnxruntime's int8 graphs (zoo export --int8), faster, approximate")
    s.set_defaults(func=cmd_sample)

    s = sub.add_parser("density", help="figure of the predictive density along a real line (Graves Fig. 10)")
    s.add_argument("--model", default=DEFAULT_MODEL)
    s.add_argument("--data", required=True, help="IAM-OnDB folder or a cache made by `prepare`")
    s.add_argument("--line", help="line id such as a02-050-03 (default: the first testset_v line)")
    s.add_argument("--out", required=True, help="FILE.png or FILE.svg")
    s.set_defaults(func=cmd_density)
