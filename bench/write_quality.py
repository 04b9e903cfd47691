"""Legibility of a synthesis model, measured: write text at several biases, read it back with a recognizer.

For each bias, two sets of text are written and read back by the recognizer
(``zoo.reading.legibility``): the transcriptions of the first N ``testset_v``
lines of IAM-OnDB (needs ``--data``), and the sentences of
``bench/sentences.txt`` (not IAM-OnDB text; capitals at the start, x, z,
digits, semicolons). Printed per set and bias: the character and word error
rates (edit distances summed over the lines), the lines read with CER > 0.5,
the lines written again (a loop on one letter, or the step cap reached; `write`'s
rewrites), those still failed after that, the lines that hit the step cap, and
the same rates for the same lines with
their words shuffled (a control: a recognizer that reads letters, not words
in context, scores them alike). The recognizer's own CER on real
``testset_v`` lines comes from its metadata, to set beside them. A second
table splits the characters asked for by class (first of a line, capitals,
digits, punctuation, lowercase, spaces; `zoo.reading.errors_by_class`) and
gives the share of each that was missed, beside the recognizer's own share
on real ``testset_v`` lines (with ``--data``), so that what the writer gets
wrong is told from what the reader gets wrong. One picture per bias of the
first ten sentences goes to ``--out``.

Each CER comes with its 95% bootstrap interval over the lines. ``--against
PRESET`` compares, line by line, with the legibility recorded in another preset
(same texts and seed; each writer in the style it was measured in) and prints each difference with its 95% paired
bootstrap interval: a writer is better only where that interval excludes 0.

    python bench/write_quality.py --model iam-synthesis --recognizer iam-recognizer --data cache/iam-ondb.npz --out docs/img
    python bench/write_quality.py --model iam-synthesis --against iam-synthesis-small ...   # which writes better, and how surely
    python bench/write_quality.py --json ...   # one JSON object instead of the table
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from zoo.cli import _silence_native_stderr  # noqa: E402
from zoo.sampling.driver import REWRITES  # noqa: E402  (numpy only)

SENTENCES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sentences.txt")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="iam-synthesis")
    p.add_argument("--recognizer", default="iam-recognizer")
    p.add_argument("--data", help="IAM-OnDB folder or cache: also measure on the transcriptions of testset_v lines")
    p.add_argument("--testset-lines", type=int, default=300, help="how many testset_v transcriptions (default: %(default)s)")
    p.add_argument("--sentences", default=SENTENCES, help="one sentence per line (default: bench/sentences.txt)")
    p.add_argument("--biases", default="0,0.5,0.75,1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--style", help="prime every line with this style stored with the preset (default: the preset's default style; 'none': unprimed)")
    p.add_argument("--no-control", dest="control", action="store_false", help="skip the shuffled-words control (half the time)")
    p.add_argument("--rewrites", type=int, default=REWRITES, help="write a line again when it loops on a letter or hits the step cap, up to N times (default: write()'s, %(default)s; 0: never)")
    p.add_argument("--beam", type=int, default=0, help="CTC beam width of the recognizer (default: greedy)")
    p.add_argument("--out", default="docs/img", help="folder for write-bias<B>.png (the first ten sentences)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--against", metavar="PRESET", help="compare line by line with the legibility recorded in this preset (same texts and seed): "
                   "CER differences with 95%% paired bootstrap intervals")
    p.add_argument("--record", action="store_true", help="store the results in the synthesis preset's metadata.json (`legibility`) and regenerate its card")
    args = p.parse_args()
    _silence_native_stderr()
    from zoo.presets import from_preset, load_metadata, preset_path
    from zoo.reading import legibility
    from zoo.render import save_drawing
    from zoo.sampling.handwriting import write

    writer, reader = from_preset(args.model), from_preset(args.recognizer)
    with open(args.sentences, encoding="utf-8") as f:
        sentences = [" ".join(ln.split()) for ln in f if ln.strip()]
    sets = {"sentences": sentences}
    if args.data:
        from zoo.data.cache import load_handwriting

        data = load_handwriting(args.data)
        sets[f"testset_v ({args.testset_lines} lines)"] = [" ".join(data.texts[i].split()) for i in data.split_indices("testset_v")[: args.testset_lines]]
    real = load_metadata(preset_path(args.recognizer)).get("evaluation", {})
    report = {"model": args.model, "recognizer": args.recognizer, "recognizer_real_cer": real.get("cer"), "seed": args.seed, "style": args.style, "results": {}}
    if args.data:  # the reader's own misses per class, on the real lines of the same split
        from zoo.evaluation import evaluate_recognizer

        idx = data.split_indices("testset_v")
        report["recognizer_real_by_class"] = evaluate_recognizer(reader, [data.line(i) for i in idx], [data.texts[i] for i in idx], beam_width=args.beam)["by_class"]
    os.makedirs(args.out, exist_ok=True)
    for bias in (float(b) for b in args.biases.split(",")):
        for name, lines in sets.items():
            t0 = time.perf_counter()
            result = legibility(writer, reader, lines, bias=bias, seed=args.seed, style=args.style, beam_width=args.beam, control=args.control, rewrites=args.rewrites)
            result["seconds"] = round(time.perf_counter() - t0, 1)
            report["results"][f"{name}, bias {bias:g}"] = result
            report["style"] = result["style"]
        path = os.path.join(args.out, f"write-bias{bias:g}.png")
        save_drawing(write(writer, sentences[:10], bias=bias, seed=args.seed), path)
    if args.against:
        from zoo.reading import compare_legibility, told_apart

        other = load_metadata(preset_path(args.against)).get("legibility") or {}
        if not other:
            sys.exit(f"--against {args.against}: it has no recorded legibility: measure it first with "
                     f"`python bench/write_quality.py --model {args.against} --data ... --record`")
        # The same texts and noise seed; each writer in the style asked for (by default its own default style,
        # so that two presets are compared as `write` uses them).
        if other.get("seed") != args.seed:
            sys.exit(f"--against {args.against}: its legibility was measured with seed {other.get('seed')}, not {args.seed}: "
                     f"measure it again with this command's texts and seed (--record)")
        report["against"] = {"preset": args.against, "style": other.get("style"),
                             "differences": compare_legibility(report["results"], other.get("results", {}))}
        if not report["against"]["differences"]:
            sys.exit(f"--against {args.against}: its recorded legibility has no per-line counts: measure it again with --record")
    if args.record:
        from zoo.model_card import _stamp, record

        report["command"] = "python bench/write_quality.py " + " ".join(a for a in sys.argv[1:] if a not in ("--record", "--json"))
        report["measured"] = _stamp()
        # The measured figures replace the counts once made by eye (write_quality).
        print(f"recorded; card: {record(args.model, 'legibility', report, section=None, replaces=('write_quality',))}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"{args.model}, style {report['style']}, read by {args.recognizer} (its CER on real testset_v lines: {100 * (real.get('cer') or float('nan')):.1f}%), seed {args.seed}\n")
    print("| text, bias | lines | CER | WER | lines CER > 0.5 | rewritten | still failed | at step cap | control: words shuffled, CER / WER |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key, r in report["results"].items():
        c = r.get("control_shuffled_words")
        control = f"{100 * c['cer']:.1f}% / {100 * c['wer']:.1f}%" if c else "not run (--no-control)"
        print(f"| {key} | {r['lines']} | {100 * r['cer']:.1f}%{_interval(r)} | {100 * r['wer']:.1f}% | {r['lines_cer_over_0.5']} | {r['lines_rewritten']} | {r['lines_failed']} | {r['lines_at_step_cap']} | {control} |")
    if "against" in report:
        print(f"\nAgainst {args.against} (style {report['against']['style']}), line by line on the same texts and seed "
              f"(this minus that; 95% paired bootstrap interval):\n")
        print("| text, bias | CER | " + args.against + " | difference | interval | told apart |")
        print("|---|---|---|---|---|---|")
        for key, d in report["against"]["differences"].items():
            lo, hi = d["ci95"]
            print(f"| {key} | {100 * d['this']:.1f}% | {100 * d['other']:.1f}% | {100 * d['difference']:+.1f} | {100 * lo:+.1f} to {100 * hi:+.1f} | {told_apart(d['ci95'])} |")
    classes = list(next(iter(report["results"].values()))["by_class"])
    print("\nCharacters missed (substituted or deleted) by class, % (count asked):\n")
    print("| text, bias | " + " | ".join(classes) + " |")
    print("|---|" + "---|" * len(classes))
    rows = dict(report["results"])
    if "recognizer_real_by_class" in report:
        rows = {"real testset_v lines, read by the recognizer": {"by_class": report["recognizer_real_by_class"]}, **rows}
    for key, r in rows.items():
        cells = [r["by_class"][c] for c in classes]
        print(f"| {key} | " + " | ".join("-" if x["rate"] is None else f"{100 * x['rate']:.1f} ({x['characters']})" for x in cells) + " |")


def _interval(result: dict) -> str:
    ci = result.get("cer_ci95")
    return f" ({100 * ci[0]:.1f}-{100 * ci[1]:.1f})" if ci else ""


if __name__ == "__main__":
    main()
