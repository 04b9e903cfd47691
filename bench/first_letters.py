"""First letters of a line: what the window sees at t = 0, judged by the recognizer (issue 13, item 4).

Each variant changes only the state a line starts from (``engine.zero_state``),
then writes the sentences of ``bench/sentences.txt`` and the transcriptions of
the first N ``testset_v`` lines with `write`'s driver (bias, seed and rewrites
as `zoo write`; batch k of 32 lines with seed k, as `bench/write_quality.py`)
and reads them back. Printed per variant and text: the CER, the first letters
and capitals missed (`zoo.reading.errors_by_class`), and the lines written again.

Variants: ``shipped`` (zero state); ``w0`` (the one-hot of each line's first
character as w_0 instead of zeros: layer 1 sees it at t = 0, eq. 52);
``kappaX`` (the window's position kappa_0 = X instead of 0, e.g. ``kappa0.5``,
``kappa-0.5``; kappa adds up from there, eq. 51). Lines are written unprimed
(a prime would start from the changed state instead of the line).

    python bench/first_letters.py --data cache/iam-ondb.npz --variants shipped,w0,kappa0.5,kappa-0.5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

SENTENCES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sentences.txt")


def kappa_start(variant: str) -> float | None:
    """kappa_0 of a ``kappaX`` variant (None for the others); ValueError where X is not a number."""
    return float(variant[len("kappa"):]) if variant.startswith("kappa") else None


def start_state(engine, texts, variant: str):
    """``engine.zero_state`` changed as ``variant`` says, for a batch writing ``texts``."""
    from zoo.sampling import driver

    zero, shift = engine.zero_state, kappa_start(variant)

    def state(count):
        s = {k: np.array(v) for k, v in zero(count).items()}
        if count != len(texts):  # the driver also asks for other batch sizes (to find the batch axes)
            return s
        if shift is not None:
            s["kappa"] = s["kappa"] + shift
        elif variant == "w0":
            ids, _ = driver.encode_lines(engine.alphabet, texts)
            s["w"][:] = 0.0
            s["w"][np.arange(len(texts)), [int(t[0]) - 1 for t in ids]] = 1.0  # ids count from 1 (0 pads)
        return s

    return state


def measure(writer, reader, texts, variant: str, bias: float, rewrites: int) -> dict:
    from zoo import reading
    from zoo.sampling import driver

    written, attempts = [], []
    for k, a in enumerate(range(0, len(texts), 32)):
        batch = texts[a : a + 32]
        writer.zero_state = start_state(writer, batch, variant)
        try:
            lines = driver.write_lines(writer, batch, bias=bias, seed=k, rewrites=rewrites, style=driver.NO_STYLE)
        finally:
            del writer.zero_state  # the engine's own method again
        written += list(lines)
        attempts += lines.attempts
    heard = reading.read(reader, written)
    rates, by_class = reading.error_rates(texts, heard), reading.errors_by_class(texts, heard)
    return {
        "cer": rates["cer"],
        "first_missed": by_class["first of line"]["missed"],
        "lines": len(texts),
        "capitals_missed": by_class["capital"]["missed"],
        "capitals": by_class["capital"]["characters"],
        "rewritten": int(sum(n > 1 for n in attempts)),
    }


def main():
    from zoo.sampling.driver import REWRITES, WRITE_BIAS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="iam-synthesis")
    p.add_argument("--recognizer", default="iam-recognizer")
    p.add_argument("--data", help="IAM-OnDB folder or cache: also the transcriptions of testset_v lines")
    p.add_argument("--testset-lines", type=int, default=100)
    p.add_argument("--sentences", default=SENTENCES)
    p.add_argument("--variants", default="shipped,w0,kappa0.5,kappa-0.5")
    p.add_argument("--bias", type=float, default=WRITE_BIAS)
    p.add_argument("--rewrites", type=int, default=REWRITES)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    variants = args.variants.split(",")
    for variant in variants:
        try:
            ok = variant in ("shipped", "w0") or kappa_start(variant) is not None
        except ValueError:
            ok = False
        if not ok:
            p.error(f"unknown variant {variant!r}: give shipped, w0 or kappaX with a number X (e.g. kappa0.5)")
    from zoo.cli import _silence_native_stderr

    _silence_native_stderr()
    from export import runtime
    from zoo.presets import preset_path

    writer, reader = runtime.load(preset_path(args.model)), runtime.load(preset_path(args.recognizer))
    sets = {"sentences": [writer.alphabet.substitute(t.strip()) for t in open(args.sentences) if t.strip()]}
    if args.data:
        from zoo.data.cache import load_handwriting

        data = load_handwriting(args.data, progress=False)
        sets["testset_v"] = [writer.alphabet.substitute(data.texts[i]) for i in data.split_indices("testset_v")[: args.testset_lines]]
    results = {}
    for variant in variants:
        t0 = time.perf_counter()
        results[variant] = {name: measure(writer, reader, texts, variant, args.bias, args.rewrites) for name, texts in sets.items()}
        if not args.json:
            print(f"{variant} ({time.perf_counter() - t0:.0f} s): " + "; ".join(
                f"{name}: CER {100 * r['cer']:.1f}%, first letters missed {r['first_missed']}/{r['lines']}, "
                f"capitals {r['capitals_missed']}/{r['capitals']}, rewritten {r['rewritten']}" for name, r in results[variant].items()), flush=True)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
