"""Text models (Graves sec. 3): training by truncated BPTT, scoring a file, streaming a sample.

`zoo train`, `zoo evaluate` and `zoo sample` are shared with the handwriting models
(zoo/cli/handwriting.py builds those parsers and hands a text preset or a named text
config to the functions here); the text-only flags are added by the add_*_arguments hooks.
"""

from __future__ import annotations

import json
import os
import sys
import time

from zoo.cli.common import _fail, _fit_keeping_best, _run_record


def cmd_train_text(args) -> None:
    """A text model (Graves sec. 3) on a file, by truncated BPTT with the state carried."""
    import keras

    from zoo import backend, distribute, model_card, presets
    from zoo.configs import TEXT_MODELS, apply_recipe
    from zoo.data.pipeline import TextStreams
    from zoo.data.text import TextDataError, Vocabulary, read_corpus, split_corpus
    from zoo.evaluation import evaluate_text
    from zoo.models.language import LanguageModel
    from zoo.training import trainer
    from zoo.training.tbptt import CarriedState

    if not args.train_file:
        _fail(f"--train-file FILE is required to train {args.model} (PTB, enwik8 and text8 come from `python -m zoo download NAME`)")
    config = TEXT_MODELS[args.model]
    # Flags left out take the named config's measured recipe (zoo/configs.py). Only a rate given
    # here replaces a resumed run's own (annealed) rate.
    given_learning_rate = args.learning_rate
    recipe = apply_recipe(args, args.model)
    if args.adaptive_weight_noise:
        args.weight_noise = 0.0  # learned noise replaces the recipe's fixed sigma
    if given_learning_rate is None and args.optimizer != recipe["optimizer"]:
        args.learning_rate = 0.01 if args.optimizer == "sgd" else 2e-3  # the recipe's rate belongs to its own optimizer
    trainer.check_resumable(args.out, "CarriedState", f"train {args.model}")  # before the corpus is read
    plan = distribute.setup_from_args(args)  # --distribute: before the backend computes anything
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
    lr = args.learning_rate
    wrapper = trainer.resume(args.out, jit_compile=jit, new_learning_rate=given_learning_rate)
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
        # Several devices: this process's streams (the carried state keeps one row per stream).
        train_data, val_data = distribute.shard(train_data, training=True, carries_state=True), distribute.shard(val_data)
    except ValueError as exc:
        _fail(str(exc))
    distribute.prepare(wrapper)
    print(
        f"{len(train_ids):,} training and {len(valid_ids):,} validation symbols ({level}, {len(network.vocabulary)} in the vocabulary); "
        f"{network.count_params():,} weights; {train_data.batches_per_pass} batches of {wrapper.batch_size}x{args.seq_length} per pass; "
        f"backend {backend.name()}, XLA {'on' if jit else 'off'}" + (f", data-parallel over {plan.devices} devices in {plan.num_processes} process(es)" if plan else ""),
        file=sys.stderr,
    )
    if plan is not None and plan.num_processes > 1:
        from zoo.cli.handwriting import _fit_on_several_processes

        state, wrapper = _fit_on_several_processes(wrapper, train_data, val_data, args, unit="nats per symbol")
        if wrapper is None:
            return  # not the chief: the chief writes the preset
    else:
        state = _fit_keeping_best(wrapper, train_data, val_data, args, unit="nats per symbol")
        wrapper = distribute.finish(wrapper)  # one device from here: evaluation and the preset
    network = wrapper.network
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
        **({"distribution": plan.describe()} if plan else {}),
    }
    preset_dir = args.preset_out or os.path.join(args.out, "preset")
    name = os.path.basename(os.path.normpath(preset_dir))
    presets.save_preset(network, preset_dir, meta, model_card.card(name, network.get_config(), meta))
    print(json.dumps({"preset": preset_dir, **evaluation, "epochs": state["epoch"], "train_seconds": meta["train_seconds"]}, indent=1))


def evaluate(model, args) -> None:
    """Bits per symbol (and perplexity for words) of a text preset on --text-file; with --dynamic, dynamic evaluation too."""
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


def sample(model, args) -> None:
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


def add_train_arguments(s) -> None:
    """The text-model flags of `zoo train` (its last argument group)."""
    t = s.add_argument_group("text models")
    t.add_argument("--train-file", help="text to train on (any UTF-8 file, PTB's files, or enwik8/text8)")
    t.add_argument("--valid-file", help="text for early stopping (default: the last 5%% of --train-file, held out)")
    t.add_argument("--level", choices=["char", "byte", "word"], help="symbols (default: the named config's)")
    t.add_argument("--vocab-size", type=int, help="word level: keep the most frequent words (default: the config's, or all)")
    t.add_argument("--seq-length", type=int, help="truncated BPTT length; the state is carried across (default: the named config's recipe)")
    t.add_argument("--reset-every", type=int, help="zero the carried state every N sequences (default: the recipe's)")
    t.add_argument("--optimizer", choices=["adam", "sgd"], help="sgd is the paper's, with --momentum (default: the recipe's)")
    t.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: %(default)s)")
    noise = t.add_mutually_exclusive_group()
    noise.add_argument("--weight-noise", type=float, help="Gaussian weight noise sigma per batch (text and handwriting prediction/synthesis; paper: 0.075 for text; default: the recipe's, none for handwriting)")
    noise.add_argument("--adaptive-weight-noise", action="store_true", help="learned per-weight noise with a description-length loss (Graves 2011), per symbol (text) or per line (handwriting)")


def add_evaluate_arguments(s) -> None:
    """The text-model flags of `zoo evaluate` (after --data)."""
    s.add_argument("--text-file", help="text models: the text to score (bpc_static, perplexity for words)")
    s.add_argument("--dynamic", action="store_true", help="text models: also bpc_dynamic, the weights adapting as the text is read (sec. 3.2)")
    s.add_argument("--dynamic-lr", type=float, default=0.3, help="SGD step size of dynamic evaluation; tune it on held-out text (default: %(default)s)")
    s.add_argument("--seq-length", type=int, default=100, help="text models: segment length; the state is carried across (default: %(default)s)")


def add_sample_arguments(s) -> None:
    """The text-model flags of `zoo sample` (after --model)."""
    s.add_argument("--prime", default="", help="text models: text to continue")
    s.add_argument("--length", type=int, default=500, help="text models: symbols to draw (default: %(default)s)")
    s.add_argument("--temperature", type=float, default=1.0, help="text models: softmax temperature, < 1 for safer text (default: %(default)s)")
