"""Model cards: a preset's README.md, written from its config.json and metadata.json.

Every figure on a card comes from the preset's metadata, and every figure in
the metadata is written by code: `zoo train` records the run and its
evaluation, `zoo evaluate ... --record` adds a measurement (and the score of a
small fixed subset that tests/test_shipped_presets.py re-measures), and the
card is regenerated from the result. Regenerate the shipped cards with

    python -m zoo.model_card                      # every shipped preset
    python -m zoo.model_card iam-synthesis        # one preset (name or folder)
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

from zoo import atomic

# The fixed subsets re-measured by tests/test_shipped_presets.py.
CHECK_LINES = 16  # the first lines of the evaluated split, in the cache's (line id) order
CHECK_CHARACTERS = 2000  # the first symbols of the evaluated text file

GRAVES = {"HandwritingPredictor": ("Table 3", -1041.0), "HandwritingSynthesizer": ("Table 4", -1096.9)}


# ---------------------------------------------------------------- cards


def _nan(x):
    return float("nan") if x is None else x


def _rows(*rows) -> list[str]:
    """Table rows ``| label | value() |``; a row whose value needs metadata the preset lacks is left out."""
    out = []
    for label, value in rows:
        try:
            out.append(f"| {label} | {value()} |")
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _evaluation_rows(meta: dict) -> list[tuple[str, dict]]:
    """(label, result) for every recorded handwriting evaluation, repaired first."""
    rows = []
    for key, ev in meta.get("evaluations", {}).items():
        if "split" not in ev or "nll_nats_per_line" not in ev:
            continue
        label = f"{ev['split']}, {'repaired' if ev.get('repaired', True) else 'not repaired'}"
        rows.append((label, ev))
    rows.sort(key=lambda r: (r[1]["split"], not r[1].get("repaired", True)))
    return rows


def _graves_comparison(meta: dict) -> str:
    """What differs between this preset's figures and Graves' (README, Results)."""
    norm = meta.get("normalization", {})
    std = norm.get("offset_std")
    evs = {bool(ev.get("repaired", True)): ev for _, ev in _evaluation_rows(meta) if ev["split"] == meta.get("validation_split", "testset_v")}
    lines = []
    if std:
        log_scale = math.log(std[0] * std[1])
        lines.append(
            f"- **Scale.** The log-loss is of offsets divided by the training set's standard deviation "
            f"({std[0]:.1f}, {std[1]:.1f} tablet units in x, y); in raw tablet units every point would cost "
            f"log(σx·σy) = {log_scale:.2f} nats more. Graves' paper does not say how its offsets were scaled, so the figures "
            f"compare only as far as the scales agree."
        )
    if True in evs and False in evs:
        rep, raw = evs[True], evs[False]
        lines.append(
            f"- **Repairs.** The training data and the headline figure are repaired: missing readings inside a stroke "
            f"are interpolated ({rep.get('cache_interpolated_points', '?'):,} points in the whole copy) and isolated jumps over 600 "
            f"units dropped ({rep.get('cache_dropped_jumps', '?'):,} in this copy). Interpolated points lie on straight lines between "
            f"their neighbours and are cheap to predict: on the lines as recorded (`zoo prepare --no-repair`, {raw['points']:,} points against "
            f"{rep['points']:,}) the same weights score {raw['nll_nats_per_line']:.1f} nats per line against "
            f"{rep['nll_nats_per_line']:.1f}."
        )
    if meta.get("train_lines"):
        lines.append(
            f"- **Training data.** {meta['train_lines']:,} lines ({', '.join(meta.get('train_splits', []))}): this copy of "
            "IAM-OnDB withholds testset_t, which Graves also trained on."
        )
    if not lines:
        return ""
    return "## Comparing with Graves (2013)\n\n" + "\n".join(lines) + "\n"


def _measurements(meta: dict) -> str:
    """The recorded evaluations, with how each was made and its re-measured subset."""
    evs = meta.get("evaluations", {})
    if not evs:
        return ""
    out = [
        "## Measurements",
        "",
        "Written into metadata.json by the command shown (`--record`); this card is generated from it "
        "(`python -m zoo.model_card`). `check` is the score of a fixed subset, measured by the same code, that "
        "`tests/test_shipped_presets.py` measures again.",
        "",
    ]
    for key, ev in evs.items():
        check = ev.get("check", {})
        if "nll_nats_per_line" not in ev and "text_file" not in ev:  # another kind of figure (error rates, ...)
            what = f"{ev['split']} lines" if "split" in ev else "measured"
            score = ", ".join(f"{k} {v:.4g}" for k, v in ev.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
            sub = ""
        elif "split" in ev:
            what = f"{ev['lines']:,} {ev['split']} lines, {'repaired' if ev.get('repaired', True) else 'not repaired'}"
            score = f"{ev['nll_nats_per_line']:.2f} nats per line, {ev['nll_nats_per_point']:.4f} per point, SSE {ev['sse_per_point']:.3f} per point"
            sub = f"first {check.get('lines')} lines: {check['nll_nats_per_line']:.3f} nats per line" if check else ""
        else:
            what = f"{ev['text_file']} ({ev['symbols']:,} {ev.get('level', '')} symbols)"
            score = ", ".join(f"{k} {v:.4f}" for k, v in ev.items() if k.startswith(("bpc_", "bits_per_word_", "perplexity_")))
            sub = f"first {check.get('symbols')} symbols: {check.get('bpc_static', check.get('bits_per_word_static', float('nan'))):.4f} bits each" if check else ""
        out.append(f"- `{key}`: {what}: {score}" + (f"; check ({sub})" if sub else "") + (f". Measured {ev['measured']}." if ev.get("measured") else "."))
        if ev.get("command"):
            out.append(f"  `{ev['command']}`")
    return "\n".join(out) + "\n"


def _earlier_legs(meta: dict) -> list:
    """The earlier training legs of a preset, newest first (each --init-from records the one before it)."""
    legs, prev = [], meta.get("initialized_from")
    while prev:
        legs.append(prev)
        prev = prev.get("initialized_from")
    return legs


LEDGER_FIGURE = "training.png"  # a handwriting preset trained over several legs: its validation curve


def ledger(meta: dict) -> list[dict]:
    """A preset's training legs, oldest first, each with its validation curve against the training
    hours of all legs so far: {"label", "epochs", "hours": [...], "val_loss": [...]}.
    A leg recorded without its history (before 2026-11-27) adds its hours and no points."""
    out, offset, widened = [], 0.0, None
    for leg in [*reversed(_earlier_legs(meta)), meta]:
        rows = [r for r in leg.get("history") or [] if r.get("val_loss") is not None and r.get("train_seconds") is not None]
        label = (f"{leg['hardware']}, batches of {leg.get('batch_size', '?')}" if leg.get("hardware") else "machine not recorded")
        if widened:  # the record of the leg before a widening says so; the curve jumps there
            label = f"widened to {widened['to_units']} units; {label}"
        widened = leg.get("widened")
        out.append({
            "label": f"{label}, final lr {leg.get('learning_rate', float('nan')):.2g}",
            "epochs": leg.get("epochs"),
            "hours": [offset + r["train_seconds"] / 3600 for r in rows],
            "val_loss": [r["val_loss"] for r in rows],
        })
        offset += (leg.get("train_seconds") or 0.0) / 3600
    return out


def _leg_rates(leg: dict) -> str:
    """A leg's epochs by learning rate, from its history where each epoch recorded its rate
    ("26 at lr 0.0005 and 16 at lr 0.00015"); otherwise all its epochs at the rate it ended with."""
    rates = [r.get("learning_rate") for r in leg.get("history") or []]
    if not rates or None in rates or len(rates) != leg.get("epochs"):
        return f"{leg.get('epochs', '?')} at lr {leg.get('learning_rate', float('nan')):.2g}"
    runs: list[list] = []  # [rate as printed, epochs] for each stretch of rates that print alike
    for rate in rates:
        printed = f"{rate:.2g}"  # float32 noise (5.0000002e-4) prints as 0.0005
        if runs and runs[-1][0] == printed:
            runs[-1][1] += 1
        else:
            runs.append([printed, 1])
    return " and ".join(f"{n} at lr {printed}" for printed, n in runs)


def _leg_hours(leg: dict) -> str:
    seconds = leg.get("train_seconds") or 0.0
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def _weight_average_note(meta: dict) -> str:
    """What a card says of a preset trained with --ema ("" otherwise)."""
    average = meta.get("weight_average")
    return f"; the weights are the moving average of training's (EMA momentum {average['ema_momentum']:g})" if average else ""


def handwriting_card(name: str, config: dict, meta: dict) -> str:
    """README.md of a handwriting preset (prediction or synthesis)."""
    ev = meta.get("evaluation", {})
    table, graves = GRAVES.get(meta.get("model"), ("", float("nan")))
    if meta.get("model") == "HandwritingSynthesizer":
        what = (
            f"Handwriting synthesis network of Graves (2013, sec. 5): writes a given text through a soft window of "
            f"{config['window_components']} Gaussians over its {len(config['alphabet']['chars'])} characters, "
        )
        use = f'`python -m zoo write "Hello world" --model {name} --out hello.svg` (`--bias` defaults to 0.75), or in Python'
        use += f' `zoo.presets.from_preset("{name}")` and `zoo.sampling.handwriting.write`.'
    else:
        what = "Handwriting prediction network of Graves (2013, sec. 4): "
        use = f'`python -m zoo sample --model {name} --out samples.svg`, or in Python `zoo.presets.from_preset("{name}")`.'
    split = meta.get("validation_split", "testset_v")
    rows = [
        f"| data | IAM On-Line Handwriting Database, train on {', '.join(meta.get('train_splits', []))} ({meta.get('train_lines', '?')} lines) |",
    ]
    recorded = _evaluation_rows(meta)
    # Validated during training on the first lines of the split (metadata "evaluation", or the older
    # "evaluation_480_validation_lines"); the figures below are the recorded evaluations' where there are any.
    val = meta.get("evaluation_480_validation_lines")
    reported = next((r["lines"] for _, r in recorded if r["split"] == split), None)
    if val is None and reported and ev.get("lines") and ev["lines"] != reported:
        val = ev
    during = f"first {val['lines']} lines during training; " if val else ""
    rows.append(f"| early stopping / report split | {split} ({during}{reported or ev.get('lines', '?')} lines for the figures below) |")
    if recorded:
        for label, r in recorded:
            ref = f"; Graves 3x400 ({table}): {graves}" if r.get("repaired", True) and r["split"] == split else ""
            rows.append(
                f"| NLL on {label} | **{r['nll_nats_per_line']:.1f}** nats per line ({r['nll_nats_per_point']:.3f} per point, "
                f"{r['lines']} lines){ref} |"
            )
    else:
        rows.append(
            f"| NLL on {split} | {_nan(ev.get('nll_nats_per_line')):.1f} nats per line ({_nan(ev.get('nll_nats_per_point')):.3f} per point); "
            f"Graves 3x400 ({table}): {graves} |"
        )
    sse = next((r["sse_per_point"] for _, r in recorded if r.get("repaired", True) and r["split"] == split), ev.get("sse_per_point"))
    rows.append(f"| SSE per point (normalised offsets) | {_nan(sse):.3f} |")
    def training():
        if meta.get("initialized_from"):
            prev = meta["initialized_from"]
            legs = _earlier_legs(meta)
            epochs = meta["epochs"] + sum(leg.get("epochs") or 0 for leg in legs)
            total_h = (meta.get("train_seconds", 0.0) + sum(leg.get("train_seconds") or 0.0 for leg in legs)) / 3600
            # Oldest leg first: its epochs at each rate (_leg_rates).
            # Each leg's machine where its record names it (legs recorded before 2026-11-27 do not).
            schedule = meta.get("learning_rate_schedule") or ", then ".join(
                _leg_rates(leg)
                + (f" ({_leg_hours(leg)}, batches of {leg.get('batch_size', '?')} on {leg['hardware']})" if leg.get("hardware") else "")
                for leg in [*reversed(legs), meta]
            )
            # Legs recorded before 2026-11-27 name no batches; this leg's epochs are named in full.
            return (
                f"{epochs} epochs in all, {total_h:.1f} h: {schedule}; the last leg {meta['epochs']} epochs of "
                f"{meta['steps_per_epoch']} batches of {meta['batch_size']}" + ("" if meta.get("hardware") else " on ?") + "; "
                f"started from {os.path.basename(str(prev.get('preset', '?')))}, {_nan(prev.get('evaluation', {}).get('nll_nats_per_line')):.1f} nats per line"
                + (f", widened from {prev['widened']['from_units']} to {prev['widened']['to_units']} units per layer (its new units started silent)" if prev.get("widened") else "")
                + (f"; the fresh optimiser's running averages estimated first from {prev['optimizer_warmup_batches']} batches at learning rate 0"
                   + (f" ({prev['optimizer_warmup_seconds']:.0f} s)" if prev.get("optimizer_warmup_seconds") is not None else "")
                   if prev.get("optimizer_warmup_batches") else "")
            )
        return (
            f"{meta['epochs']} epochs of {meta['steps_per_epoch']} batches of {meta['batch_size']}, "
            f"{meta['train_seconds'] / 60:.1f} min on {meta['hardware']}"
        )

    rows += _rows(
        ("training", training),
        (
            "optimiser",
            lambda: f"Graves RMSProp (eq. 38-45), final lr {meta['learning_rate']:.3g}; derivatives clipped to "
            f"[-{config['lstm_clip']:g}, {config['lstm_clip']:g}] (LSTM) and [-{config['output_clip']:g}, {config['output_clip']:g}] (output)"
            + _weight_average_note(meta),
        ),
    )
    parts = [
        f"# {name}\n\n{what}{config['num_layers']} skip-connected LSTM layers of {config['units']} cells and a mixture of "
        f"{config['num_mixtures']} bivariate Gaussians with an end-of-stroke Bernoulli, predicting pen offsets one point at a time.\n",
        "| | |\n|---|---|\n" + "\n".join(rows) + "\n",
        f"Use: {use} The IAM-OnDB licence (non-commercial research) applies to models trained on it.\n",
    ]
    if meta.get("note"):
        parts.append(f"Note: {meta['note']}\n")
    if _has_ledger_figure(meta):
        parts.append(f"Validation NLL over every training leg (`{LEDGER_FIGURE}`, from the ledger in metadata.json):\n\n![validation NLL over the training legs]({LEDGER_FIGURE})\n")
    legible = meta.get("legibility")
    if legible:
        # Figures measured before write() rewrote looping lines have no rewrite counts: "-".
        rows = "\n".join(
            f"| {key} | {r['lines']} | {100 * r['cer']:.1f}%" + (f" ({100 * r['cer_ci95'][0]:.1f}-{100 * r['cer_ci95'][1]:.1f})" if r.get("cer_ci95") else "")
            + f" | {100 * r['wer']:.1f}% | {r['lines_cer_over_0.5']} | "
            f"{r.get('lines_rewritten', '-')} | {r.get('lines_failed', '-')} | {r['lines_at_step_cap']} | "
            + (f"{100 * r['control_shuffled_words']['cer']:.1f}% / {100 * r['control_shuffled_words']['wer']:.1f}% |"
               if r.get("control_shuffled_words") else "not run (--no-control) |")
            for key, r in legible["results"].items()
        )
        rewrites = next(iter(legible["results"].values())).get("rewrites")
        rewritten = (f"A line whose window stayed on one letter too long or that ran to the step cap was written again, up to "
                     f"{rewrites} times (`write`'s rewrites); still failed: after those.\n\n" if rewrites is not None else
                     "Measured before `write` rewrote looping lines.\n\n")
        parts.append(
            f"## Legibility\n\nMeasured, not judged by eye: `{legible['command']}` writes each text and reads it back with "
            f"`{legible['recognizer']}` (its own CER on real testset_v lines: {100 * legible['recognizer_real_cer']:.1f}%). "
            f"Error rates are edit distances summed over the lines (in brackets, where measured: the 95% bootstrap interval over the lines); "
            f"the control writes the same lines with their words shuffled. "
            + rewritten
            + "| text, bias | lines | CER | WER | lines CER > 0.5 | rewritten | still failed | at step cap | control (shuffled words): CER / WER |\n"
            "|---|---|---|---|---|---|---|---|---|\n"
            f"{rows}\n"
        )
    against = (legible or {}).get("against")
    if against and against.get("differences"):
        from zoo.reading import told_apart

        rows = "\n".join(
            f"| {key} | {100 * d['this']:.1f}% | {100 * d['other']:.1f}% | {100 * d['difference']:+.1f} ({100 * d['ci95'][0]:+.1f} to {100 * d['ci95'][1]:+.1f}) | "
            f"{told_apart(d['ci95'])} |"
            for key, d in against["differences"].items()
        )
        parts.append(
            f"Against `{against['preset']}` (style {against.get('style')}), line by line on the same texts and seed (this minus that, points of CER; "
            f"95% paired bootstrap interval over the lines):\n\n| text, bias | CER | {against['preset']} | difference | told apart |\n"
            f"|---|---|---|---|---|\n{rows}\n"
        )
    quality = meta.get("write_quality") if not legible else None
    if quality:
        fails = ", ".join(f"{n} of {quality['lines']} at bias {b}" for b, n in quality["failing_lines"].items())
        parts.append(
            f"## Legibility\n\n`{quality['command']}` writes {quality['lines']} sentences that are not from IAM-OnDB; "
            f"{quality['judged']}. Lines that fail: {fails}. {quality.get('remark', '')}".rstrip() + "\n"
        )
    for section in (_graves_comparison(meta), _measurements(meta)):
        if section:
            parts.append(section)
    return "\n".join(parts)


def text_card(name: str, config: dict, meta: dict) -> str:
    """README.md of a text preset."""
    ev = meta.get("evaluation", {})
    score = ", ".join(f"{k} {v:.3f}" for k, v in ev.items() if k.startswith(("bpc", "bits", "perplexity")))
    vocab = config["vocabulary"]
    size = len(vocab["symbols"]) + 1 if vocab["level"] != "byte" else 257
    rows = _rows(
        ("config", lambda: meta["config"]),
        ("trained on", lambda: f"{meta['train_file']} ({meta['train_symbols']:,} symbols); validation: {meta['valid_file']}"),
        ("validation", lambda: f"{score} ({ev['symbols']:,} symbols, state carried, static)"),
        (
            "training",
            lambda: f"{meta['epochs']} epochs of {meta['steps_per_epoch']} batches of {meta['batch_size']}x{meta['seq_length']}, "
            f"state reset every {meta['reset_every']} sequences; {meta['optimizer']} lr {meta['learning_rate']:g}; "
            f"{meta['train_seconds'] / 60:.1f} min on {meta['hardware']}",
        ),
        (
            "regularisation",
            lambda: f"weight noise {config['weight_noise']:g}, adaptive noise {config['adaptive_noise']}; "
            f"LSTM derivatives clipped to [-{config['lstm_clip']:g}, {config['lstm_clip']:g}]",
        ),
    )
    table = "\n".join(rows)
    card = f"""# {name}

Text prediction network of Graves (2013, sec. 3): {config['num_layers']} skip-connected LSTM
layer(s) of {config['units']} cells over {vocab['level']} symbols ({size}
in the vocabulary, id 0 the unknown symbol) and a softmax over the next symbol.

| | |
|---|---|
{table}

Use: `python -m zoo sample --model {name} --prime "The " --length 300` or
`python -m zoo evaluate --model {name} --text-file FILE [--dynamic]`.
"""
    test = meta.get("test")
    if test:
        rows = [
            ("bzip2 -9 (measured in the same run)", test.get("bzip2_9")),
            ("xz -9e (same run)", test.get("xz_9e")),
            ("zpaq -m5 (the issue's figure; zpaq is not installed here)", test.get("zpaq_m5_from_issue")),
            ("this model, static", test.get("bpc_static")),
            (f"this model, dynamic evaluation (SGD step {test.get('dynamic_learning_rate', '?')} after every 100 symbols)", test.get("bpc_dynamic")),
        ]
        table = "\n".join(f"| {label} | {value:.3f} |" for label, value in rows if value is not None)
        card += f"""
## Test text: {test['text_file']}

| coder | bits per character |
|---|---|
{table}

The dynamic step size was chosen on {test.get('dynamic_learning_rate_chosen_on', 'held-out text')}.
Reproduce: `{test.get('command', '')}`.
"""
    section = _measurements(meta)
    if section:
        card += "\n" + section
    return card


def recognizer_card(name: str, config: dict, meta: dict) -> str:
    """The card of a handwriting recognizer (zoo.models.recognizer), from what was measured."""
    ev = meta.get("evaluation", {})
    rows = [
        f"| data | IAM On-Line Handwriting Database, trained on {', '.join(meta.get('train_splits', []))} ({meta.get('train_lines', '?')} lines) |",
        f"| early stopping / report split | {meta.get('validation_split', '?')} ({ev.get('lines', '?')} lines) |",
        f"| character error rate ({ev.get('decoding', 'greedy')}) | {100 * ev.get('cer', float('nan')):.1f}% |",
        f"| word error rate ({ev.get('decoding', 'greedy')}) | {100 * ev.get('wer', float('nan')):.1f}% |",
    ]
    for key, other in sorted(meta.get("evaluations", {}).items()):
        if isinstance(other, dict) and "cer" in other:
            rows.append(f"| {key} | CER {100 * other['cer']:.1f}%, WER {100 * other['wer']:.1f}% ({other.get('lines', '?')} lines, {other.get('decoding', 'greedy')}) |")
    if "epochs" in meta:
        dropout = f", dropout {config['dropout']:g} on the BLSTM inputs" if config.get("dropout") else ""
        dropout += _weight_average_note(meta)
        rows.append(
            f"| training | {meta['epochs']} epochs of {meta.get('steps_per_epoch', '?')} batches of {meta.get('batch_size', '?')}, "
            f"{meta.get('train_seconds', 0) / 60:.1f} min on {meta.get('hardware', '?')}; Adam lr {meta.get('learning_rate', float('nan')):g} at the end, CTC loss"
            f"{dropout} |"
        )
    legs = _earlier_legs(meta)
    for n, leg in enumerate(legs):  # a fine-tuning leg: the earlier training counts too
        rows.append(
            f"| {'started from' if n == 0 else 'before that'} | {os.path.basename(str(leg.get('preset', '?')))} as of {leg.get('created', '?')}: "
            f"{leg.get('epochs', '?')} epochs, {(leg.get('train_seconds') or 0) / 60:.1f} min, CER {100 * leg.get('evaluation', {}).get('cer', float('nan')):.1f}% |"
        )
    if legs:
        epochs = sum(leg.get("epochs") or 0 for leg in legs) + meta.get("epochs", 0)
        hours = (sum(leg.get("train_seconds") or 0 for leg in legs) + meta.get("train_seconds", 0)) / 3600
        rows.append(f"| in all | {epochs} epochs, {hours:.1f} h in {len(legs) + 1} legs |")
    table = "\n".join(rows)
    return f"""# {name}

Online handwriting recognizer (BLSTM-CTC, after Graves et al. 2009): reads the pen offsets
(dx, dy, pen-up) that the synthesis network writes, with no timestamps. Two strided 1-D
convolutions ({config['filters']} filters, 4 points per frame), {config['num_layers']} bidirectional LSTM layers of
{config['units']} cells, and a softmax over CTC's blank and {len(config['alphabet']['chars'])} characters (the synthesis alphabet).

| | |
|---|---|
{table}

Use: `python -m zoo read hello.svg --model {name}`, or in Python
`zoo.reading.read(zoo.presets.from_preset("{name}"), offsets)`. The IAM-OnDB licence
(non-commercial research) applies to models trained on it.
"""


def card(name: str, config: dict, meta: dict) -> str:
    """The card of any preset kind; ``config`` is the model's get_config()."""
    if meta.get("model") == "HandwritingRecognizer":
        return recognizer_card(name, config, meta)
    if meta.get("model") == "LanguageModel" or "vocabulary" in config:
        return text_card(name, config, meta)
    return handwriting_card(name, config, meta)


# ---------------------------------------------------------------- preset files


def write_card(name_or_path: str) -> str:
    """(Re)write a preset's README.md from its config.json and metadata.json; returns its path."""
    from zoo.presets import CARD, CONFIG, load_metadata, preset_path

    folder = preset_path(name_or_path)
    with open(os.path.join(folder, CONFIG)) as f:
        config = json.load(f)["config"]
    name = os.path.basename(os.path.normpath(folder))
    path = os.path.join(folder, CARD)
    meta = load_metadata(folder)
    if _has_ledger_figure(meta):
        from zoo.render.figures import plot_training_ledger

        with atomic.replacing(os.path.join(folder, LEDGER_FIGURE)) as tmp:
            plot_training_ledger(ledger(meta), tmp)
    atomic.write_text(path, card(name, config, meta))
    return path


def _has_ledger_figure(meta: dict) -> bool:
    """A handwriting preset with more than one leg and a recorded validation curve gets training.png."""
    return meta.get("model") in GRAVES and bool(meta.get("initialized_from")) and sum(bool(leg["hours"]) for leg in ledger(meta)) >= 2


def record(name_or_path: str, key: str, value, section: str | None = "evaluations", replaces: tuple = ()) -> str:
    """Store ``value`` in a preset's metadata.json (under ``section``/``key``, or ``key`` at the top level
    when ``section`` is None), keeping every other entry as it is but the top-level keys it ``replaces``,
    and regenerate the card."""
    from zoo.presets import METADATA, load_metadata, preset_path

    folder = preset_path(name_or_path)
    meta = load_metadata(folder)
    for old in replaces:
        meta.pop(old, None)
    if section is None:
        meta[key] = value
    else:
        meta.setdefault(section, {})[key] = value
    atomic.write_json(os.path.join(folder, METADATA), meta)
    return write_card(folder)


def _stamp() -> str:
    import keras

    return f"{time.strftime('%Y-%m-%d', time.gmtime())}, Keras {keras.__version__} ({keras.backend.backend()} backend)"


# ---------------------------------------------------------------- fixed subsets


def handwriting_check(model, lines, texts, ids) -> dict:
    """Log-loss of the first CHECK_LINES lines given (raw offsets, in split order)."""
    from zoo.evaluation import evaluate_handwriting

    n = min(CHECK_LINES, len(lines))
    result = evaluate_handwriting(model, lines[:n], list(texts[:n]) if texts is not None else None, batch_size=n)
    return {"lines": n, "line_ids": list(ids[:n]), **{k: result[k] for k in ("points", "nll_nats_per_line", "nll_nats_per_point")}}


def recognizer_check(model, lines, texts, ids) -> dict:
    """What a recognizer reads of the first CHECK_LINES lines given (raw offsets, in split order), and its CER there."""
    from zoo.evaluation import evaluate_recognizer

    n = min(CHECK_LINES, len(lines))
    result = evaluate_recognizer(model, lines[:n], list(texts[:n]), batch_size=n, return_read=True)
    return {"lines": n, "line_ids": list(ids[:n]), **{k: result[k] for k in ("cer", "wer", "read")}}


def read_check_lines(data_dir: str, line_ids, repair: bool):
    """The lines ``line_ids`` read afresh from the IAM-OnDB files, through the same code as `zoo prepare`
    (reader, repairs, integer rounding of the cache): (raw offsets, texts)."""
    from zoo.data import iam
    from zoo.data.cache import HandwritingSet

    forms = {i.rpartition("-")[0] for i in line_ids}
    lines, _ = iam.read_lines(data_dir, forms=forms, repair=repair)
    by_id = {ln.id: ln for ln in lines}
    missing = [i for i in line_ids if i not in by_id]
    if missing:
        raise KeyError(f"lines {missing} are not in {data_dir}")
    data = HandwritingSet.from_lines([by_id[i] for i in line_ids], {}, {})
    return [data.line(k) for k in range(len(data))], data.texts


def text_check(model, corpus, seq_length: int = 100) -> dict:
    """Bits per symbol on the first CHECK_CHARACTERS symbols of a text (read as `zoo evaluate` reads it)."""
    from zoo.evaluation import evaluate_text

    start = {"char": "\n", "byte": b"\n", "word": ["<eos>"]}[model.vocabulary.level]
    result = evaluate_text(model, model.vocabulary.encode(start + corpus[:CHECK_CHARACTERS]), seq_length=seq_length)
    return {k: v for k, v in result.items() if k in ("symbols", "seq_length") or k.endswith("_static")}


def record_handwriting_evaluation(preset: str, model, data, split: str, result: dict, data_arg: str) -> str:
    """`zoo evaluate --record` for a handwriting preset: the result, how the data was prepared, and the check."""
    report = data.report
    repaired = bool(report.get("repaired", True))  # caches made before --no-repair existed were all repaired
    idx = data.split_indices(split)
    entry = {
        "split": split,
        "repaired": repaired,
        **{k: v for k, v in result.items() if k in ("lines", "points", "nll_nats_per_line", "nll_nats_per_point", "sse_per_point")},
        "cache_interpolated_points": report.get("interpolated_points"),
        "cache_dropped_jumps": report.get("dropped_jumps"),
        "check": handwriting_check(model, [data.line(i) for i in idx[:CHECK_LINES]], [data.texts[i] for i in idx[:CHECK_LINES]], [data.ids[i] for i in idx[:CHECK_LINES]]),
        "command": f"python -m zoo {'prepare --no-repair' if not repaired else 'prepare'} --data DIR --out {data_arg}; "
        f"python -m zoo evaluate --model {preset} --data {data_arg} --split {split} --record",
        "measured": _stamp(),
    }
    return record(preset, split if repaired else f"{split}_not_repaired", entry)


def record_text_evaluation(preset: str, model, text_file: str, corpus, result: dict, seq_length: int) -> str:
    """`zoo evaluate --record` for a text preset: the result and the score of the text's first symbols."""
    name = os.path.basename(text_file)
    entry = {
        "text_file": name,
        **{k: v for k, v in result.items() if k not in ("model", "text_file")},
        "check": text_check(model, corpus, seq_length),
        "command": f"python -m zoo evaluate --model {preset} --text-file {text_file} --seq-length {seq_length} --record",
        "measured": _stamp(),
    }
    return record(preset, name, entry)


def main(argv=None) -> None:
    from zoo.presets import list_presets

    names = (sys.argv[1:] if argv is None else argv) or list_presets()
    for name in names:
        print(write_card(name))


if __name__ == "__main__":
    main()
