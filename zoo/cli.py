"""`python -m zoo`: prepare, train, evaluate, sample, density.

Every subcommand has --help. TensorFlow's C++ start-up logging is sent to
/dev/null (Python's own errors and warnings still reach the terminal); set
ZOO_DEBUG=1 to see everything.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
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


# ---------------------------------------------------------------- prepare


def cmd_prepare(args) -> None:
    """Read the IAM-OnDB archives into one compressed cache. Missing readings are
    interpolated and isolated glitch jumps dropped unless --no-repair is given;
    the cache records which (report: repaired)."""
    from zoo.data.cache import prepare, resolve_iam_dir

    data_dir = resolve_iam_dir(args.data)
    data = prepare(data_dir, args.out, progress=not args.quiet, repair=args.repair)
    print(json.dumps({"cache": args.out, "megabytes": round(os.path.getsize(args.out) / 1e6, 1), **data.report}, indent=1))


# ---------------------------------------------------------------- train


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
    record = {"preset": os.path.abspath(folder)}
    meta_path = os.path.join(folder, "metadata.json")
    if os.path.isfile(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        # The earlier training, so that the new preset's totals stay honest.
        record.update({k: meta.get(k) for k in ("epochs", "train_seconds", "learning_rate", "evaluation", "created")})
    return model, record


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


def _optimizer(model_class, learning_rate):
    """Graves' RMSProp (eq. 38-45) for the handwriting networks of the paper; Adam for the recognizer (CTC)."""
    import keras

    if model_class.__name__ == "HandwritingRecognizer":
        return keras.optimizers.Adam(learning_rate or 1e-3, clipnorm=10.0)
    from zoo.training.graves_rmsprop import GravesRMSprop

    return GravesRMSprop(learning_rate=learning_rate or 1e-4)


def cmd_train(args) -> None:
    from zoo.configs import TEXT_MODELS

    if args.model in TEXT_MODELS:
        return cmd_train_text(args)
    if not args.data:
        _fail("--data is required to train a handwriting model: an IAM-OnDB folder or a cache made by `prepare`")
    import keras

    from zoo import backend, model_card, presets
    from zoo.data.alphabet import Alphabet
    from zoo.data.cache import TRAIN_SPLITS, load_handwriting
    from zoo.data.pipeline import batches_for
    from zoo.evaluation import evaluate_handwriting, evaluate_recognizer
    from zoo.models import HandwritingPredictor, HandwritingRecognizer, HandwritingSynthesizer
    from zoo.training import trainer

    model_class = {"prediction": HandwritingPredictor, "synthesis": HandwritingSynthesizer, "recognizer": HandwritingRecognizer}[args.model]
    recognizer = model_class is HandwritingRecognizer
    # A run folder of another kind is refused before any data is read or any epoch trained.
    trainer.check_resumable(args.out, model_class.__name__, f"train {args.model}")
    keras.utils.set_random_seed(args.seed)
    jit = backend.default_jit_compile() if args.xla is None else args.xla
    data = load_handwriting(args.data)
    train_idx = data.split_indices("train")[: args.max_train_lines]
    val_idx = data.split_indices(args.validation_split)[: args.max_val_lines]
    train_raw, val_raw = [data.line(i) for i in train_idx], [data.line(i) for i in val_idx]
    train_texts, val_texts = [data.texts[i] for i in train_idx], [data.texts[i] for i in val_idx]

    model = trainer.resume(args.out, jit_compile=jit, new_learning_rate=args.learning_rate)
    initialized_from = None
    if model is None and args.init_from:
        # Fine-tune (or continue) a preset: its weights, alphabet and normalisation, a fresh optimiser.
        model, initialized_from = _init_from_preset(args.init_from, model_class)
        model.compile(optimizer=_optimizer(model_class, args.learning_rate), jit_compile=jit)
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, INIT_RECORD), "w") as f:
            json.dump(initialized_from, f, indent=1)
        print(f"starting from the weights of {args.init_from}", file=sys.stderr)
        _warn_ignored_shape_flags(args, model, "--init-from")
    elif model is None:
        mean, std = data.normalization("train")
        if recognizer:
            # The synthesis alphabet: both are built from the same training transcriptions.
            model = HandwritingRecognizer(Alphabet.from_texts(train_texts), units=args.units or 128, num_layers=args.layers or 2, offset_mean=mean, offset_std=std)
        else:
            common = dict(units=args.units or 400, num_layers=args.layers or 3, num_mixtures=args.mixtures or 20, offset_mean=mean, offset_std=std)
            if args.model == "synthesis":
                model = HandwritingSynthesizer(Alphabet.from_texts(train_texts), window_components=args.window_components or 10, **common)
            else:
                model = HandwritingPredictor(**common)
        model.build()
        model.compile(optimizer=_optimizer(model_class, args.learning_rate), jit_compile=jit)
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
    print(
        f"{len(train_raw)} training lines, {len(val_raw)} {args.validation_split} lines; "
        f"padding {100 * train_data.padding_fraction():.1f}%; {model.count_params():,} weights; "
        f"backend {backend.name()}, XLA {'on' if jit else 'off'}",
        file=sys.stderr,
    )
    state = _fit_keeping_best(model, train_data, val_data, args, unit="CTC nats per line" if recognizer else "nats per line")
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
        "normalization": {"offset_mean": list(model.offset_mean), "offset_std": list(model.offset_std)},
        **_run_record(state, args, jit),
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


def cmd_train_text(args) -> None:
    """A text model (Graves sec. 3) on a file, by truncated BPTT with the state carried."""
    import keras

    from zoo import backend, model_card, presets
    from zoo.configs import TEXT_MODELS
    from zoo.data.pipeline import TextStreams
    from zoo.data.text import TextDataError, Vocabulary, read_corpus, split_corpus
    from zoo.evaluation import evaluate_text
    from zoo.models.language import LanguageModel
    from zoo.training import trainer
    from zoo.training.tbptt import CarriedState

    if not args.train_file:
        _fail(f"--train-file FILE is required to train {args.model} (PTB, enwik8 and text8 come from `python -m zoo download NAME`)")
    config = TEXT_MODELS[args.model]
    trainer.check_resumable(args.out, "CarriedState", f"train {args.model}")  # before the corpus is read
    level = args.level or config["level"]
    keras.utils.set_random_seed(args.seed)
    jit = backend.default_jit_compile() if args.xla is None else args.xla
    try:
        corpus = read_corpus(args.train_file, level)
        if args.valid_file:
            train_corpus, valid_corpus = corpus, read_corpus(args.valid_file, level)
            held_out = os.path.basename(args.valid_file)
        elif config.get("split"):  # the corpus's own split (enwik8: Graves' first 96M / last 4M)
            train_corpus, valid_corpus = split_corpus(corpus, config["split"], args.train_file)
            held_out = f"symbols {len(train_corpus):,} to {len(train_corpus) + len(valid_corpus):,} of the train file ({config['split']} split)"
        else:
            cut = int(len(corpus) * 0.95)
            train_corpus, valid_corpus = corpus[:cut], corpus[cut:]
            held_out = "last 5% of the train file"
    except TextDataError as exc:
        _fail(str(exc))
    lr = args.learning_rate or (0.01 if args.optimizer == "sgd" else 2e-3)
    wrapper = trainer.resume(args.out, jit_compile=jit, new_learning_rate=args.learning_rate)
    if wrapper is None:
        vocab = Vocabulary.build(train_corpus, level, max_size=args.vocab_size or config.get("max_vocab"))
        network = LanguageModel(
            vocab,
            units=args.units or config["units"],
            num_layers=args.layers or config["num_layers"],
            weight_noise=args.weight_noise,
            adaptive_noise=args.adaptive_weight_noise,
            train_symbols=len(train_corpus),
        )
        wrapper = CarriedState(network, args.batch_size)
        wrapper.build()
        # sec. 3: SGD with momentum; Adam as the faster option on small budgets.
        optimizer = keras.optimizers.SGD(lr, momentum=args.momentum) if args.optimizer == "sgd" else keras.optimizers.Adam(lr)
        wrapper.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit)
    else:
        print(f"resuming from {os.path.join(args.out, trainer.CHECKPOINT)}", file=sys.stderr)
    network = wrapper.network
    train_ids, valid_ids = network.vocabulary.encode(train_corpus), network.vocabulary.encode(valid_corpus)
    try:
        train_data = TextStreams(train_ids, wrapper.batch_size, args.seq_length, args.reset_every, args.steps_per_epoch)
        val_batch = max(1, min(wrapper.batch_size, (len(valid_ids) - 1) // args.seq_length))
        val_data = TextStreams(valid_ids, val_batch, args.seq_length)
    except ValueError as exc:
        _fail(str(exc))
    print(
        f"{len(train_ids):,} training and {len(valid_ids):,} validation symbols ({level}, {len(network.vocabulary)} in the vocabulary); "
        f"{network.count_params():,} weights; {train_data.batches_per_pass} batches of {wrapper.batch_size}x{args.seq_length} per pass; "
        f"backend {backend.name()}, XLA {'on' if jit else 'off'}",
        file=sys.stderr,
    )
    state = _fit_keeping_best(wrapper, train_data, val_data, args, unit="nats per symbol")
    evaluation = evaluate_text(network, valid_ids, seq_length=args.seq_length)
    meta = {
        "model": "LanguageModel",
        "config": args.model,
        "train_file": os.path.basename(args.train_file),
        "valid_file": held_out,
        "train_symbols": int(len(train_ids)),
        "evaluation": evaluation,
        "steps_per_epoch": train_data.steps_per_epoch,
        "batch_size": wrapper.batch_size,
        "seq_length": args.seq_length,
        "reset_every": args.reset_every,
        "optimizer": args.optimizer,
        "learning_rate": trainer.learning_rate(wrapper),
        **_run_record(state, args, jit),
    }
    preset_dir = args.preset_out or os.path.join(args.out, "preset")
    name = os.path.basename(os.path.normpath(preset_dir))
    presets.save_preset(network, preset_dir, meta, model_card.card(name, network.get_config(), meta))
    print(json.dumps({"preset": preset_dir, **evaluation, "epochs": state["epoch"], "train_seconds": meta["train_seconds"]}, indent=1))


def cmd_download(args) -> None:
    """Fetch a text corpus into the cache (resumable, sha256-checked) and print its files."""
    from zoo.data.download import DownloadError, fetch_corpus

    try:
        files = fetch_corpus(args.name, args.cache, url=args.url, sha256=args.sha256, progress=not args.quiet)
    except DownloadError as exc:
        _fail(str(exc))
    print(json.dumps(files, indent=1))


def cmd_presets(args) -> None:
    """List the presets the registry names or this machine holds: name, kind, size, metrics, where they are."""
    from zoo import hub

    rows = hub.listing()
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    for row in rows:
        metrics = ", ".join(f"{k} {v}" for k, v in row["metrics"].items())
        where = "+".join(row["local"]) or ("download" if row["download"] else "not published yet")
        print(f"{row['name']:<24} {row['kind'] or '?':<12} {hub.human_size(row['size']):>9}  {where:<18} {metrics}")


def cmd_publish(args) -> None:
    """Pack a preset into a release archive (OUT/NAME.tar.gz, reproducible) and print its registry entry as JSON."""
    from zoo import hub

    name, entry = hub.publish(args.model, args.out, name=args.name, url=args.url, hf=args.hf, description=args.description)
    if args.registry:
        hub.add_to_registry(args.registry, name, entry)
    print(json.dumps({name: entry}, indent=1))


# ---------------------------------------------------------------- evaluate


def cmd_evaluate(args) -> None:
    from zoo.data.cache import load_handwriting
    from zoo.evaluation import evaluate_handwriting
    from zoo.presets import from_preset

    model = from_preset(args.model)
    if hasattr(model, "vocabulary"):
        return _evaluate_text(model, args)
    if getattr(model, "task", None) == "recognition":
        return _evaluate_recognizer(model, args)
    if hasattr(model, "alphabet") and args.text_file:
        return _evaluate_legibility(model, args)
    if args.text_file or not args.data:
        _fail(f"{args.model} is a handwriting model: evaluate it with --data (IAM-OnDB folder or cache), not --text-file")
    data = load_handwriting(args.data)
    try:
        lines = data.lines(args.split)
    except KeyError as exc:
        _fail(str(exc.args[0]))
    if not lines:
        _fail(f"split {args.split!r} has no lines in {args.data} (its forms are absent from this copy)")
    texts = [data.texts[i] for i in data.split_indices(args.split)]
    result = evaluate_handwriting(model, lines, texts, batch_size=args.batch_size, progress=not args.quiet)
    print(json.dumps({"model": args.model, "split": args.split, **result}, indent=1))
    if args.record:
        from zoo.model_card import record_handwriting_evaluation

        print(f"recorded in the metadata; card: {record_handwriting_evaluation(args.model, model, data, args.split, result, args.data)}", file=sys.stderr)


def _evaluate_recognizer(model, args) -> None:
    """CER and WER of a recognizer on a split of real lines (edit distances summed over the split)."""
    from zoo.data.cache import load_handwriting
    from zoo.evaluation import evaluate_recognizer

    if not args.data:
        _fail(f"{args.model} is a recognizer: evaluate it on real lines with --data (IAM-OnDB folder or cache) --split NAME")
    data = load_handwriting(args.data)
    try:
        idx = data.split_indices(args.split)
    except KeyError as exc:
        _fail(str(exc.args[0]))
    if not len(idx):
        _fail(f"split {args.split!r} has no lines in {args.data} (its forms are absent from this copy)")
    t0 = time.time()
    result = evaluate_recognizer(model, [data.line(i) for i in idx], [data.texts[i] for i in idx], beam_width=args.beam, batch_size=args.batch_size)
    result = {"model": args.model, "split": args.split, **result, "seconds": round(time.time() - t0, 1)}
    print(json.dumps(result, indent=1))
    if args.record:
        from zoo.model_card import record

        key = f"{args.split}_{result['decoding'].replace(' ', '')}"
        print(f"recorded in the metadata; card: {record(args.model, key, result)}", file=sys.stderr)


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


def _evaluate_text(model, args) -> None:
    from zoo.data.text import TextDataError, read_corpus
    from zoo.evaluation import evaluate_text

    if not args.text_file:
        _fail(f"{args.model} is a text model: give the text to score with --text-file FILE")
    try:
        corpus = read_corpus(args.text_file, model.vocabulary.level)
    except TextDataError as exc:
        _fail(str(exc))
    # A line break read first lets the model score every symbol of the file
    # (its first one too), as a compressor of the same file would.
    start = {"char": "\n", "byte": b"\n", "word": ["<eos>"]}[model.vocabulary.level]
    ids = model.vocabulary.encode(start + corpus)
    result = {"model": args.model, "text_file": args.text_file}
    t0 = time.time()
    result.update(evaluate_text(model, ids, seq_length=args.seq_length, progress=not args.quiet))
    result["seconds_static"] = round(time.time() - t0, 1)
    if args.dynamic:
        t0 = time.time()
        result.update(evaluate_text(model, ids, seq_length=args.seq_length, dynamic=True, learning_rate=args.dynamic_lr, progress=not args.quiet))
        result["seconds_dynamic"] = round(time.time() - t0, 1)
    print(json.dumps(result, indent=1))
    if args.record:
        from zoo.model_card import record_text_evaluation

        print(f"recorded in the metadata; card: {record_text_evaluation(args.model, model, args.text_file, corpus, result, args.seq_length)}", file=sys.stderr)


# ---------------------------------------------------------------- sample / density


def _sampling_bias(text: str) -> float:
    """argparse type of --bias (eq. 61-62): the driver's rule, a finite number >= 0 (NaN or a negative bias draws NaN strokes)."""
    from zoo.sampling.driver import check_bias  # numpy only: the parser stays light

    try:
        return check_bias(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _check_picture_path(path: str, flag: str = "--out", formats=(".svg", ".png")) -> None:
    """Refuse a picture path that cannot be written before any model is loaded or any point sampled."""
    if not path.lower().endswith(formats):
        _fail(f"{flag} {path}: name the picture FILE{' or FILE'.join(formats)} (the format follows the extension)")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        _fail(f"{flag} {path}: the folder {folder} does not exist")


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
        return _sample_text(model, args)
    if not args.out:
        _fail("--out FILE.svg or FILE.png is required for handwriting samples")
    t0 = time.time()
    offsets = sample_unconditional(model, steps=args.steps, count=args.count, bias=args.bias, seed=args.seed, backend=args.backend, precision=args.precision)
    seconds = time.time() - t0
    save_drawing(offsets, args.out)
    print(json.dumps({"out": args.out, "count": args.count, "steps": args.steps, "seconds": round(seconds, 2)}))


def _sample_text(model, args) -> None:
    """Stream a text sample to stdout (and to --out if given) as it is drawn."""
    from zoo.sampling.text import sample_text

    out = open(args.out, "w", encoding="utf-8") if args.out else None
    try:
        sys.stdout.write(args.prime)
        for piece in sample_text(model, prime=args.prime, length=args.length, temperature=args.temperature, seed=args.seed, backend=args.backend, precision=args.precision):
            sys.stdout.write(piece)
            sys.stdout.flush()
            if out:
                out.write(piece)
    except ValueError as exc:
        _fail(str(exc))
    finally:
        if out:
            out.close()
    sys.stdout.write("\n")


def page_lines(text: str, width: int) -> list[str]:
    """Paragraphs -> lines of at most ``width`` characters (long words are split, never refused)."""
    import textwrap

    lines = []
    for paragraph in text.splitlines():
        paragraph = " ".join(paragraph.split())
        if paragraph:
            lines += textwrap.wrap(paragraph, width=width, break_long_words=True, break_on_hyphens=False)
    return lines


def _onnx_writer(args):
    """The onnxruntime sampler `zoo write` uses when the preset carries a current export, or None.

    Loading it directly, not through from_preset, keeps TensorFlow and Keras out of
    the process: their import took ~4.5 of the 4.6 s of a one-line `zoo write`."""
    from zoo.presets import preset_path
    from zoo.sampling.engines import choose

    try:
        folder = preset_path(args.model)
    except FileNotFoundError as exc:
        _fail(str(exc))
    if choose(folder, args.backend, args.precision) != "onnx":
        return None
    from export import runtime

    sampler = runtime.load(folder, precision=args.precision)
    return sampler if hasattr(sampler, "write") else None  # a prediction preset: from_preset's path explains


def cmd_write(args) -> None:
    from zoo.data.alphabet import UnknownCharacters
    from zoo.render import save_drawing

    # Where the pictures go is checked before any model is loaded or any point sampled.
    _check_picture_path(args.out)
    if args.alignment:
        _check_picture_path(args.alignment, "--alignment", (".png", ".svg", ".pdf"))
    if args.file:
        with open(args.file, encoding="utf-8") as f:
            text = f.read()
    else:
        text = "\n".join(args.text)
    lines = page_lines(text, args.width)
    if not lines:
        _fail("the text is empty: give the words to write, e.g. python -m zoo write \"Hello world\" --out hello.svg")
    model = _onnx_writer(args)
    if model is not None:
        write = model.write
    else:
        from zoo.presets import from_preset
        from zoo.sampling.handwriting import write as keras_write

        model = from_preset(args.model)
        if not hasattr(model, "alphabet"):
            _fail(f"{args.model} is a prediction model; `write` needs a synthesis preset such as {DEFAULT_WRITER}")
        write = functools.partial(keras_write, model, backend=args.backend, precision=args.precision)
    prime = None
    if args.prime_line:
        from zoo.data.cache import load_handwriting

        if not args.data:
            _fail("--prime-line needs --data, the IAM-OnDB folder the line comes from")
        data = load_handwriting(args.data)
        try:
            i = data.index(args.prime_line)
        except KeyError as exc:
            _fail(str(exc.args[0]))
        prime = (data.line(i), data.texts[i])
    batch = [ln for ln in lines for _ in range(args.count)]
    t0 = time.time()
    try:
        offsets, alignments = write(
            batch, bias=args.bias, seed=args.seed, prime=prime, style=args.style, substitute=args.substitute, return_alignment=True,
        )
    except UnknownCharacters as exc:
        _fail(str(exc))
    seconds = time.time() - t0
    save_drawing(offsets, args.out)
    if args.alignment:
        from zoo.render.figures import plot_alignment  # matplotlib: only for the figure (the onnxruntime path needs numpy alone)

        plot_alignment(*alignments[0], args.alignment, offsets[0])
    print(json.dumps({"out": args.out, "lines": len(batch), "points": int(sum(len(o) for o in offsets)), "seconds": round(seconds, 2)}))


def _offsets_in(path: str) -> list:
    """The pen offsets per line held by a file that `zoo read` reads."""
    import numpy as np

    from zoo.render.svg import read_svg_offsets

    if not os.path.isfile(path):
        _fail(f"no file {path!r}")
    lower = path.lower()
    try:
        if lower.endswith(".svg"):
            return read_svg_offsets(path)
        if lower.endswith(".npy"):
            array = np.load(path)
            if array.ndim == 2 and array.shape[1] == 3:
                return [array]
            if array.ndim == 3 and array.shape[2] == 3:
                return list(array)
            raise ValueError(f"{path} holds an array of shape {array.shape}: pen offsets are (N, 3) or (K, N, 3)")
        if lower.endswith(".npz"):
            with np.load(path) as z:
                return [z[k] for k in z.files]
    except (OSError, ValueError, EOFError) as exc:
        _fail(f"cannot read pen offsets from {path}: {exc}")
    if lower.endswith(".png"):
        _fail(f"{path} is a picture, not pen offsets: read the .svg that zoo write wrote (it carries the offsets)")
    _fail(f"cannot tell what {path!r} holds: give FILE.svg (written by zoo write or zoo sample), FILE.npy or FILE.npz")


def cmd_read(args) -> None:
    """Print the text of every line of handwriting in the files, one per line."""
    from zoo.presets import preset_path
    from zoo.reading import read
    from zoo.sampling.engines import choose

    try:
        folder = preset_path(args.model)
    except FileNotFoundError as exc:
        _fail(f"{exc}; train a recognizer with `python -m zoo train recognizer --data DIR --out RUN`")
    lines = [ln for path in args.files for ln in _offsets_in(path)]
    if choose(folder, args.backend) == "onnx":  # numpy + onnxruntime only: no TensorFlow import
        from export import runtime

        reader = runtime.load(folder)
    else:
        from zoo.presets import from_preset

        reader = from_preset(folder)
    if getattr(reader, "task", None) != "recognition" and getattr(reader, "kind", None) != "recognition":
        _fail(f"{args.model} is not a recognizer; read with --model {DEFAULT_RECOGNIZER} or another recognizer preset")
    for text in read(reader, lines, beam_width=args.beam, backend=args.backend):
        print(text)


def cmd_export(args) -> None:
    """Export a preset: model.onnx (one sampling step), loop.onnx (the whole sampling loop, noise as an input)
    and saved_model/ (log-likelihood, step and sampler signatures); metadata.json records the export."""
    from export import export_model

    formats = ("onnx", "saved_model") if args.format == "all" else (args.format,)
    t0 = time.time()
    entry = export_model(args.model, args.out, formats=formats, opset=args.opset, int8=args.int8)
    files = sorted(f for f in os.listdir(args.out) if f.endswith(".onnx") or f == "saved_model")
    print(json.dumps({"out": args.out, "kind": entry["runtime"]["kind"], "files": files, "seconds": round(time.time() - t0, 1)}))


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
    from zoo.sampling.driver import WRITE_BIAS  # numpy only: the parser stays light

    p = argparse.ArgumentParser(prog="python -m zoo", description="Graves (2013) sequence generation model zoo.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("prepare", help="read the IAM-OnDB archives into one compressed cache", description=cmd_prepare.__doc__)
    s.add_argument("--data", required=True, help="folder with lineStrokes-all.tar.gz, ascii-all.tar.gz and splits/ (or their extracted folders)")
    s.add_argument("--out", default=os.path.join("cache", "iam-ondb.npz"), help="cache file to write (default: %(default)s)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument(
        "--no-repair", dest="repair", action="store_false",
        help="keep recording glitches as recorded: no interpolated missing readings, no dropped jumps (for comparing NLL figures)",
    )
    s.set_defaults(func=cmd_prepare)

    from zoo.configs import TEXT_MODELS

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
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--epochs", type=int, default=1000, help="upper bound; early stopping ends the run first")
    s.add_argument("--steps-per-epoch", type=int, help="batches per epoch, i.e. between checkpoints (default: one pass)")
    s.add_argument("--patience", type=int, default=10, help="epochs without improvement on the validation split before stopping")
    s.add_argument(
        "--init-from",
        metavar="PRESET",
        help="handwriting: start a new run from a preset's weights (fine-tuning, or continuing a shipped model) instead of from scratch",
    )
    s.add_argument("--learning-rate", type=float, help="default: 1e-4 (handwriting, Graves RMSProp); text: 0.01 (SGD), 2e-3 (Adam); when resuming, a given rate replaces the checkpoint's (annealing)")
    s.add_argument("--time-budget", type=float, help="stop after this many seconds of training in all, over resumed sessions too (checked after every batch)")
    s.add_argument("--validation-split", default="testset_v")
    s.add_argument("--max-train-lines", type=int, help="use only the first N training lines (quick runs)")
    s.add_argument("--max-val-lines", type=int, help="use only the first N validation lines (quick runs)")
    xla = s.add_mutually_exclusive_group()
    xla.add_argument("--xla", dest="xla", action="store_true", default=None, help="XLA-compile the train step (default on a GPU)")
    xla.add_argument("--no-xla", dest="xla", action="store_false", help="plain graph mode (default on a CPU)")
    s.add_argument("--pad-to", type=int, help="pad batch lengths to a multiple of this (default: 32, or 128 under XLA/JAX)")
    s.add_argument("--no-augment", dest="augment", action="store_false", help="recognizer: train on the lines as written (default: a random scale, slant and rotation of each line, drawn anew every pass)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--hardware", help="describe the machine in the preset's metadata")
    t = s.add_argument_group("text models")
    t.add_argument("--train-file", help="text to train on (any UTF-8 file, PTB's files, or enwik8/text8)")
    t.add_argument("--valid-file", help="text for early stopping (default: the last 5%% of --train-file, held out)")
    t.add_argument("--level", choices=["char", "byte", "word"], help="symbols (default: the named config's)")
    t.add_argument("--vocab-size", type=int, help="word level: keep the most frequent words (default: the config's, or all)")
    t.add_argument("--seq-length", type=int, default=100, help="truncated BPTT length; the state is carried across (default: %(default)s)")
    t.add_argument("--reset-every", type=int, default=100, help="zero the carried state every N sequences (default: %(default)s)")
    t.add_argument("--optimizer", choices=["adam", "sgd"], default="adam", help="sgd is the paper's, with --momentum (default: %(default)s)")
    t.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: %(default)s)")
    noise = t.add_mutually_exclusive_group()
    noise.add_argument("--weight-noise", type=float, default=0.0, help="Gaussian weight noise sigma per batch of sequences (paper: 0.075)")
    noise.add_argument("--adaptive-weight-noise", action="store_true", help="learned per-weight noise with a description-length loss (Graves 2011)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("download", help="fetch PTB, enwik8 or text8 into the cache (resumable, sha256-checked)")
    s.add_argument("name", choices=["ptb", "enwik8", "text8"])
    s.add_argument("--cache", help="cache folder (default: $ZOO_CACHE_DIR or ~/.cache/zoo)")
    s.add_argument("--url", help="a mirror to fetch from instead of the official address")
    s.add_argument("--sha256", help="expected sha256 of the archive (default: the one recorded by the first download)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_download)

    s = sub.add_parser("presets", help="list the presets (registry and local): name, kind, size, metrics, where", description=cmd_presets.__doc__)
    s.add_argument("--json", action="store_true", help="print the list as JSON")
    s.set_defaults(func=cmd_presets)

    s = sub.add_parser("publish", help="pack a preset into a release archive and print its registry entry", description=cmd_publish.__doc__)
    s.add_argument("--model", required=True, help="preset name, folder or training run")
    s.add_argument("--out", required=True, help="folder to write NAME.tar.gz into")
    s.add_argument("--name", help="the preset's name (default: the folder's, or the run's for RUN/preset)")
    s.add_argument("--url", help="where the archive will be served (a URL ending in / gets NAME.tar.gz appended)")
    s.add_argument("--hf", help="hf://owner/repo[@revision] holding the same files, as a second source")
    s.add_argument("--description", help="default: the first paragraph of the preset's README.md")
    s.add_argument("--registry", help="also write the entry into this registry JSON file (e.g. zoo/registry.json)")
    s.set_defaults(func=cmd_publish)

    s = sub.add_parser("evaluate", help="log-loss of a model on an official split or a text file, as JSON")
    s.add_argument("--model", default=DEFAULT_MODEL, help="preset name or folder (default: %(default)s)")
    s.add_argument("--data", help="handwriting: IAM-OnDB folder or a cache made by `prepare`")
    s.add_argument("--text-file", help="text models: the text to score (bpc_static, perplexity for words)")
    s.add_argument("--dynamic", action="store_true", help="text models: also bpc_dynamic, the weights adapting as the text is read (sec. 3.2)")
    s.add_argument("--dynamic-lr", type=float, default=0.3, help="SGD step size of dynamic evaluation; tune it on held-out text (default: %(default)s)")
    s.add_argument("--seq-length", type=int, default=100, help="text models: segment length; the state is carried across (default: %(default)s)")
    s.add_argument("--split", default="testset_v", help="trainset, testset_v, testset_t, testset_f, train or all")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--beam", type=int, default=0, help="recognizers: CTC beam search of this many prefixes (default: 0, greedy decoding)")
    g = s.add_argument_group("legibility of a synthesis model (with --text-file)", "write every line of the file, read it back with --recognizer")
    g.add_argument("--recognizer", default="iam-recognizer", help="the recognizer that reads (default: %(default)s)")
    g.add_argument("--bias", type=_sampling_bias, help=f"sampling bias of the writing (default: {WRITE_BIAS}, as zoo write)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--style", help="a named style stored with the synthesis preset")
    s.add_argument(
        "--record", action="store_true",
        help="write the result (and the score of a small fixed subset, re-measured by the tests) into the preset's metadata.json "
        "under `evaluations`, then regenerate its README.md",
    )
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("sample", help="draw handwriting samples to SVG/PNG, or stream text from a text model")
    s.add_argument("--model", default=DEFAULT_MODEL, help="preset name or folder (default: %(default)s)")
    s.add_argument("--prime", default="", help="text models: text to continue")
    s.add_argument("--length", type=int, default=500, help="text models: symbols to draw (default: %(default)s)")
    s.add_argument("--temperature", type=float, default=1.0, help="text models: softmax temperature, < 1 for safer text (default: %(default)s)")
    s.add_argument("--steps", type=_positive_int, default=700, help="pen points per sample (default: %(default)s)")
    s.add_argument("--count", type=_positive_int, default=4, help="samples, drawn together in one batch")
    s.add_argument("--bias", type=_sampling_bias, default=0.0, help="sampling bias b >= 0 of eq. 61-62 (0: unbiased)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", help="FILE.svg or FILE.png (handwriting); text models also copy the sample here")
    s.add_argument("--backend", choices=["auto", "keras", "onnx"], default="auto", help="auto: onnxruntime when the preset carries a current ONNX export, else Keras")
    s.add_argument("--precision", choices=["float32", "int8"], default="float32", help="int8: onnxruntime's int8 graphs (zoo export --int8), faster, approximate")
    s.set_defaults(func=cmd_sample)

    s = sub.add_parser("write", help="write text by hand with a synthesis model, to SVG or PNG")
    s.add_argument("text", nargs="*", help="the text; long text is wrapped into lines of --width characters")
    s.add_argument("--file", help="read the text from this UTF-8 file (one paragraph per line)")
    s.add_argument("--model", default=DEFAULT_WRITER, help="synthesis preset name or folder (default: %(default)s)")
    s.add_argument("--bias", type=_sampling_bias, default=WRITE_BIAS, help="sampling bias b >= 0 of eq. 61-62: 0 varied (scribbles more), 1-2 neat (default: %(default)s)")
    style = s.add_mutually_exclusive_group()
    style.add_argument("--style", help="a named style stored with the preset (primed sampling, sec. 5.5)")
    style.add_argument("--prime-line", help="prime with this IAM-OnDB line id (needs --data)")
    s.add_argument("--data", help="IAM-OnDB folder or cache, for --prime-line")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--count", type=_positive_int, default=1, help="versions of each line")
    s.add_argument("--width", type=_positive_int, default=60, help="wrap lines at this many characters (default: %(default)s)")
    s.add_argument("--substitute", action="store_true", help="replace characters the model does not know instead of failing")
    s.add_argument("--alignment", help="also save the window alignment of the first line (Fig. 13) to this PNG (or .svg, .pdf)")
    s.add_argument("--out", required=True, help="FILE.svg or FILE.png")
    s.add_argument("--backend", choices=["auto", "keras", "onnx"], default="auto", help="auto: onnxruntime when the preset carries a current ONNX export, else Keras")
    s.add_argument("--precision", choices=["float32", "int8"], default="float32", help="int8: onnxruntime's int8 graphs (zoo export --int8), faster, approximate")
    s.set_defaults(func=cmd_write)

    s = sub.add_parser("read", help="read handwriting back to text with a recognizer (SVGs written by zoo write/sample, .npy/.npz offsets)")
    s.add_argument("files", nargs="+", help="FILE.svg written by `zoo write`/`zoo sample`, FILE.npy ((N, 3) or (K, N, 3) pen offsets) or FILE.npz (one array per line)")
    s.add_argument("--model", default=DEFAULT_RECOGNIZER, help="recognizer preset name or folder (default: %(default)s)")
    s.add_argument("--beam", type=int, default=0, help="CTC beam search of this many prefixes (default: 0, greedy decoding)")
    s.add_argument("--backend", choices=["auto", "keras", "onnx"], default="auto", help="auto: onnxruntime when the preset carries a current ONNX export, else Keras")
    s.set_defaults(func=cmd_read)

    s = sub.add_parser("export", help="export a model to ONNX (step + whole sampling loop) and/or SavedModel", description=cmd_export.__doc__)
    s.add_argument("--model", required=True, help="preset name or folder")
    s.add_argument("--format", choices=["saved_model", "onnx", "all"], default="all", help="what to write (default: %(default)s)")
    s.add_argument("--out", required=True, help="folder to write into; the preset's own folder adds the export to the preset")
    s.add_argument("--opset", type=int, help="ONNX opset (default: export.onnx.OPSET)")
    s.add_argument("--int8", action="store_true", help="also write int8 copies of the ONNX graphs (loop.int8.onnx, model.int8.onnx) for --precision int8")
    s.set_defaults(func=cmd_export)

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

