"""Reading handwriting with a recognizer (zoo.models.recognizer), numpy only.

CTC decoding of the recognizer's per-frame logits (greedy: the best class per
frame, repeats merged, blanks dropped; or a prefix beam search), edit
distances and the error rates that judge legibility. `read` runs on an engine
chosen like the samplers' (zoo.sampling.engines: a compiled Keras model, or
onnxruntime over the preset's current export), so the same lines give the
same text either way.

    >>> from zoo.presets import from_preset
    >>> from zoo.sampling.handwriting import write
    >>> read(from_preset("iam-recognizer"), write(from_preset("iam-synthesis"), ["Hello world"], bias=1.0))
    ['Hello world']
"""

from __future__ import annotations

import math

import numpy as np

from zoo.data.offsets import normalize
from zoo.sampling.driver import REWRITES


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def greedy_decode(logits: np.ndarray, frames: int) -> list[int]:
    """Best path: the most likely class of each of the first ``frames`` frames, repeats merged, blanks (0) dropped."""
    best = np.argmax(logits[:frames], axis=-1)
    return [int(k) for i, k in enumerate(best) if k != 0 and (i == 0 or k != best[i - 1])]


def beam_decode(logits: np.ndarray, frames: int, beam_width: int = 8, prune: float = -12.0) -> list[int]:
    """CTC prefix beam search (no language model): the most likely labelling, summed over its alignments.

    Each prefix keeps log Pr(prefix, ending in blank) and log Pr(prefix, ending in its last label);
    classes whose log-probability at a frame is below ``prune`` are not tried."""
    if beam_width < 1:
        raise ValueError(f"beam width must be >= 1 (0 means greedy decoding in read()), got {beam_width}")
    logp = log_softmax(np.asarray(logits[:frames], np.float64))
    beams = {(): (0.0, -math.inf)}  # prefix -> (log p_blank, log p_label)
    for t in range(frames):
        row = logp[t]
        candidates = np.flatnonzero(row > prune)
        nxt: dict = {}

        def add(prefix, pb, pl):
            b, l = nxt.get(prefix, (-math.inf, -math.inf))
            nxt[prefix] = (np.logaddexp(b, pb), np.logaddexp(l, pl))

        for prefix, (pb, pl) in beams.items():
            total = np.logaddexp(pb, pl)
            for k in candidates:
                p = row[k]
                if k == 0:
                    add(prefix, total + p, -math.inf)
                elif prefix and prefix[-1] == k:
                    add(prefix, -math.inf, pl + p)  # the same label again without a blank: merged
                    add(prefix + (int(k),), -math.inf, pb + p)  # after a blank: a new label
                else:
                    add(prefix + (int(k),), -math.inf, total + p)
        beams = dict(sorted(nxt.items(), key=lambda kv: -np.logaddexp(*kv[1]))[:beam_width])
    best = max(beams.items(), key=lambda kv: np.logaddexp(*kv[1]))[0] if beams else ()
    return list(best)


def edit_distance(a, b) -> int:
    """Levenshtein distance between two sequences (insertions, deletions, substitutions cost 1)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def missed_characters(reference, hypothesis) -> list[bool]:
    """For each character of ``reference``: whether a minimal edit script (the Levenshtein
    alignment with ``hypothesis``) substitutes or deletes it. Insertions belong to no reference
    character and are not counted here. Among equal-cost alignments, matches are preferred."""
    return _alignment(reference, hypothesis)[0]


def _alignment(reference, hypothesis) -> tuple[list[bool], int]:
    """`missed_characters` and the number of inserted characters of one minimal edit script."""
    n, m = len(reference), len(hypothesis)
    cost = np.zeros((n + 1, m + 1), np.int32)
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1, cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1]))
    missed, inserted = [False] * n, 0
    i, j = n, m
    while i > 0:
        if j > 0 and cost[i, j] == cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            missed[i - 1] = reference[i - 1] != hypothesis[j - 1]  # a match or a substitution
            i, j = i - 1, j - 1
        elif j > 0 and cost[i, j] == cost[i, j - 1] + 1:
            j, inserted = j - 1, inserted + 1
        else:
            missed[i - 1] = True  # deleted
            i -= 1
    return missed, inserted + j  # characters read before the first one asked are inserted too


# Where writing (and reading) fails most: the first character of a line, capitals, digits.
CHARACTER_CLASSES = {
    "first of line": lambda text, i: i == 0,
    "capital": lambda text, i: text[i].isupper(),
    "digit": lambda text, i: text[i].isdigit(),
    "punctuation": lambda text, i: not text[i].isalnum() and not text[i].isspace(),
    "lowercase": lambda text, i: text[i].islower(),
    "space": lambda text, i: text[i].isspace(),
}


def errors_by_class(references, hypotheses) -> dict:
    """The share of reference characters missed (substituted or deleted, `missed_characters`)
    per class of `CHARACTER_CLASSES` (a character may be in two: a capital first of its line):
    {class: {"characters": n, "missed": k, "rate": k / n}}; and "inserted": the characters read
    that stand for none asked, per character asked (with the misses, the CER's numerator)."""
    counts = {name: [0, 0] for name in CHARACTER_CLASSES}
    inserted = 0
    for ref, hyp in zip(references, hypotheses):
        missed, extra = _alignment(ref, hyp)  # one alignment gives both: no second edit distance
        inserted += extra
        for i, miss in enumerate(missed):
            for name, member in CHARACTER_CLASSES.items():
                if member(ref, i):
                    counts[name][0] += 1
                    counts[name][1] += int(miss)
    chars = sum(len(r) for r in references)
    counts["inserted"] = [chars, inserted]
    return {name: {"characters": n, "missed": k, "rate": k / n if n else None} for name, (n, k) in counts.items()}


def error_rates(references, hypotheses) -> dict:
    """Character and word error rates: edit distances summed over the lines, divided by the
    references' summed lengths (not averaged per line); words split on whitespace."""
    if len(references) != len(hypotheses) or not references:
        raise ValueError(f"need as many hypotheses as references, at least one (got {len(references)} and {len(hypotheses)})")
    line_edits = [edit_distance(r, h) for r, h in zip(references, hypotheses)]
    word_edits = sum(edit_distance(r.split(), h.split()) for r, h in zip(references, hypotheses))
    lengths = [len(r) for r in references]
    chars = sum(lengths)
    words = sum(len(r.split()) for r in references)
    return {
        "cer": sum(line_edits) / max(1, chars),
        "cer_ci95": cer_interval(line_edits, lengths),
        "wer": word_edits / max(1, words),
        "lines": len(references),
        "lines_cer_over_0.5": int(sum(e / max(1, n) > 0.5 for e, n in zip(line_edits, lengths))),
        "characters": chars,
        "words": words,
        "line_char_edits": [int(e) for e in line_edits],  # per line, in order: for paired comparisons
        "line_chars": [int(n) for n in lengths],
    }


# A CER of a few hundred lines moves by about a percentage point between samplings of its lines;
# two writers are told apart only by a difference whose interval excludes 0.
BOOTSTRAP_RESAMPLES = 2000


def _resampled_sums(per_line, resamples: int, seed: int) -> list[np.ndarray]:
    """Each array of per-line counts summed over ``resamples`` resamplings of the lines with replacement,
    the same resampled lines for every array (a fixed seed): the bootstrap of `cer_interval` and
    `paired_cer_difference`."""
    arrays = [np.asarray(v, np.float64) for v in per_line]
    idx = np.random.default_rng(seed).integers(0, len(arrays[0]), (resamples, len(arrays[0])))
    return [a[idx].sum(1) for a in arrays]


def _interval95(values) -> list[float]:
    return [float(v) for v in np.percentile(values, [2.5, 97.5])]


def cer_interval(line_edits, lengths, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> list[float]:
    """95% bootstrap interval of a CER (edits summed over the lines / characters summed): the lines
    resampled with replacement ``resamples`` times (percentile interval, a fixed seed)."""
    edits, chars = _resampled_sums([line_edits, lengths], resamples, seed)
    return _interval95(edits / np.maximum(chars, 1))


def paired_cer_difference(edits_a, edits_b, lengths, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict:
    """CER of writer a minus writer b on the same texts (line by line), with the 95% paired bootstrap
    interval: both writers' lines are resampled together, so what the texts share cancels.
    {"difference", "ci95", "lines"}; a difference is real only when its interval excludes 0."""
    if not (len(edits_a) == len(edits_b) == len(lengths)) or not len(lengths):
        raise ValueError(f"need per-line edit counts of both writers on the same lines (got {len(edits_a)}, {len(edits_b)}, {len(lengths)})")
    a, b, chars = _resampled_sums([edits_a, edits_b, lengths], resamples, seed)
    return {"difference": float((sum(edits_a) - sum(edits_b)) / max(sum(lengths), 1)),
            "ci95": _interval95((a - b) / np.maximum(chars, 1)), "lines": len(lengths)}


def told_apart(ci95) -> str:
    """The verdict on a paired difference (this minus that) from its interval: "better" or "worse" where
    the interval excludes 0, "no" where it holds it."""
    lo, hi = ci95
    return "no" if lo <= 0 <= hi else ("better" if hi < 0 else "worse")


def decode(engine, raw_lines, beam_width: int = 0, batch_size: int = 32) -> list[str]:
    """Raw pen offsets per line -> text per line, read in length-sorted batches on ``engine``."""
    lines = [normalize(np.asarray(ln, np.float32), engine.offset_mean, engine.offset_std) for ln in raw_lines]
    order = np.argsort([len(ln) for ln in lines], kind="stable")
    texts: list[str | None] = [None] * len(lines)
    for a in range(0, len(order), batch_size):
        idx = order[a : a + batch_size]
        lengths = np.asarray([len(lines[k]) for k in idx], np.int32)
        x = np.zeros((len(idx), int(np.ceil(max(lengths.max(), 1) / 32) * 32), 3), np.float32)
        for b, k in enumerate(idx):
            x[b, : lengths[b]] = lines[k]
        logits, frames = engine.recognize(x, lengths)
        for b, k in enumerate(idx):
            ids = beam_decode(logits[b], int(frames[b]), beam_width) if beam_width else greedy_decode(logits[b], int(frames[b]))
            texts[k] = engine.alphabet.decode(ids)
    return texts


def read(model, offsets, beam_width: int = 0, backend: str = "auto") -> list[str]:
    """The text of each line of handwriting: ``offsets`` one (N, 3) array of raw pen offsets or a list of them.

    ``model``: a recognizer (``from_preset("iam-recognizer")``) or an engine of one
    (``export.runtime.load(folder)``). Greedy decoding, or a beam search of ``beam_width`` prefixes."""
    if isinstance(offsets, np.ndarray) and offsets.ndim == 2:
        offsets = [offsets]
    offsets = list(offsets)
    if not offsets:
        raise ValueError("no lines to read: pass one (N, 3) array of pen offsets or a list of them")
    if beam_width < 0:
        raise ValueError(f"beam width must be >= 0 (0: greedy decoding), got {beam_width}")
    if hasattr(model, "recognize"):
        engine = model
    else:
        if getattr(model, "task", None) != "recognition":
            raise ValueError(f"{type(model).__name__} is not a recognizer: read with from_preset('iam-recognizer') or another recognizer preset")
        from zoo.sampling.engines import engine_for

        engine = engine_for(model, backend)
    return decode(engine, offsets, beam_width)


def compare_legibility(results: dict, other: dict) -> dict:
    """{text, bias: paired CER difference} of two writers' `legibility` results keyed alike (this minus
    other; `paired_cer_difference`), for every key both measured line by line on the same texts."""
    out = {}
    for key, r in results.items():
        o = other.get(key)
        if not o or "line_char_edits" not in r or "line_char_edits" not in o:
            continue
        if r["lines"] != o["lines"] or r["characters"] != o["characters"]:
            raise ValueError(f"{key}: the two results were measured on different texts ({r['lines']} lines, {r['characters']} characters "
                             f"against {o['lines']}, {o['characters']}): measure both with the same --data, --testset-lines and sentences")
        out[key] = {"this": r["cer"], "other": o["cer"], **paired_cer_difference(r["line_char_edits"], o["line_char_edits"], r["line_chars"])}
    return out


def legibility(writer, recognizer, lines, bias: float, seed: int = 0, style: str | None = None, beam_width: int = 0,
               batch_size: int = 32, max_steps_per_char: int = 40, control: bool = True, rewrites: int = REWRITES) -> dict:
    """Write every text of ``lines`` with a synthesis model and read it back with ``recognizer``.

    Returns the error rates of what was read against what was asked (characters the writer does
    not know are first substituted, as ``zoo write --substitute`` does, and counted), how many lines
    hit the step cap, a few examples, and, with ``control``, the same rates for the same lines with
    their words shuffled: a recognizer that reads letters, not words in context, scores them alike.
    Batch k of ``batch_size`` lines is written with seed ``seed + k``; ``style`` None is the
    writer's default style (``style="none"``: unprimed). Lines that loop or hit the cap are written
    again up to ``rewrites`` times (by default as often as `write` does; 0: never); the
    result counts the lines rewritten and those that still failed."""
    from zoo.sampling import driver
    from zoo.sampling.engines import engine_for

    engine = engine_for(writer)
    asked = [writer.alphabet.substitute(t) for t in lines]
    substituted = sum(a != t for a, t in zip(asked, lines))

    def write_and_read(texts):
        written, attempts, failed = [], [], []
        for k, a in enumerate(range(0, len(texts), batch_size)):
            batch = driver.write_lines(engine, texts[a : a + batch_size], bias=bias, seed=seed + k, style=style,
                                       max_steps_per_char=max_steps_per_char, rewrites=rewrites)
            written += batch
            attempts += batch.attempts
            failed += batch.failed
        return written, read(recognizer, written, beam_width), attempts, failed

    written, heard, attempts, failed = write_and_read(asked)
    result = error_rates(asked, heard)
    result["by_class"] = errors_by_class(asked, heard)
    result["style"] = style if style is not None else (getattr(engine, "default_style", None) or "none")  # the one written in
    result["lines_at_step_cap"] = int(sum(len(o) >= max_steps_per_char * len(t) for o, t in zip(written, asked)))
    result["rewrites"] = rewrites
    result["lines_rewritten"] = int(sum(n > 1 for n in attempts))
    result["lines_failed"] = int(sum(failed))  # still looping or capped after the rewrites
    result["substituted_lines"] = int(substituted)
    result["decoding"] = f"beam {beam_width}" if beam_width else "greedy"
    result["examples"] = [{"asked": a, "read": h} for a, h in list(zip(asked, heard))[:5]]
    if control:
        rng = np.random.default_rng(seed)
        shuffled = [" ".join(rng.permutation(t.split())) for t in asked]
        _, heard_shuffled, _, _ = write_and_read(shuffled)
        rates = error_rates(shuffled, heard_shuffled)
        result["control_shuffled_words"] = {k: rates[k] for k in ("cer", "wer", "lines_cer_over_0.5")}
    return result
