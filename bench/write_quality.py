"""Write ten sentences that are not IAM-OnDB text at several biases, for a human to judge.

Saves one picture per bias (all ten lines, sampled together in one batch) and
prints how long `write` takes for one line and for ten lines. The failure
count (dropped or repeated words, scribbles, lines that never end) is made by
looking at the pictures; lines that hit the step cap are counted here.
Sampling goes through ``zoo.sampling.handwriting.write`` on the engine that
``--backend`` picks (auto: onnxruntime when the preset carries a current
export, else the Keras engine's compiled loop); the report names it.

    python bench/write_quality.py --model iam-synthesis --out docs/img
    python bench/write_quality.py --model /tmp/syn-export --backend onnx --biases 0.75 --out /tmp/wq
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from zoo.cli import _silence_native_stderr  # noqa: E402

SENTENCES = [
    "The quick brown fox jumps over the lazy dog",
    "Handwriting synthesis with recurrent networks",
    "Meet me at the station at half past nine",
    "Please send the invoice before Friday",
    "My favourite colour is dark green",
    "She sold seven shells by the sea shore",
    "Numbers like 42 and 1970 are hard",
    "Rain is expected later this evening",
    "A model zoo for sequence generation",
    "Thank you for the lovely flowers",
]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="iam-synthesis")
    p.add_argument("--biases", default="0,0.5,0.75,1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps-per-char", type=int, default=40)
    p.add_argument("--out", default="docs/img", help="folder for write-bias<B>.png")
    p.add_argument("--backend", default="auto", choices=("auto", "keras", "onnx"), help="sampling engine (default: %(default)s)")
    p.add_argument("--precision", default="float32", choices=("float32", "int8"), help="onnxruntime graphs (int8: zoo export --int8)")
    args = p.parse_args()
    _silence_native_stderr()
    from zoo.presets import from_preset
    from zoo.render import save_drawing
    from zoo.sampling import handwriting
    from zoo.sampling.engines import engine_for

    model = from_preset(args.model)
    os.makedirs(args.out, exist_ok=True)

    def write(lines, **kwargs):
        return handwriting.write(model, lines, backend=args.backend, precision=args.precision, **kwargs)

    engine = engine_for(model, args.backend, args.precision)
    # Compile the loop (or load the sessions): two shapes, so that a tf.function relaxes
    # its batch and text axes at once and the timed calls below trace nothing.
    write(["warm up"], max_steps_per_char=5)
    write(["warm up", "a longer second line"], max_steps_per_char=5)
    report = {"engine": f"{type(engine).__name__} ({engine.precision})" if hasattr(engine, "precision") else type(engine).__name__}
    t0 = time.perf_counter()
    write(SENTENCES[:1], seed=args.seed)
    report["seconds_one_line"] = round(time.perf_counter() - t0, 2)
    for bias in (float(b) for b in args.biases.split(",")):
        t0 = time.perf_counter()
        offsets = write(SENTENCES, bias=bias, seed=args.seed, max_steps_per_char=args.max_steps_per_char)
        seconds = time.perf_counter() - t0
        capped = sum(len(o) >= args.max_steps_per_char * len(s) for o, s in zip(offsets, SENTENCES))
        path = os.path.join(args.out, f"write-bias{bias:g}.png")
        save_drawing(offsets, path)
        report[f"bias {bias:g}"] = {"seconds_ten_lines": round(seconds, 2), "lines_at_step_cap": capped, "picture": path}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
