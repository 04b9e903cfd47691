"""Training throughput of the handwriting predictor: real pen points per second.

Runs the same train step side by side in one process, in TensorFlow graph
mode and XLA-compiled (jit_compile=True), on the same batches, and prints a
table with the ratio. Batches are real IAM-OnDB lines when --data (or
$ZOO_DATA_DIR) is given, else synthetic handwriting-like lines.

    python bench/train_throughput.py --data ../shared/data --units 400 --layers 3
    python bench/train_throughput.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from zoo.cli import _silence_native_stderr  # noqa: E402


def real_lines(path, count, length):
    from zoo.data.cache import load_handwriting

    data = load_handwriting(path, progress=False)
    mean, std = data.normalization("train")
    lines = [ln for ln in data.lines("trainset") if len(ln) > length][:count]
    return lines, mean, std


def synthetic_lines(count, length, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        i = np.arange(length + 1)
        dx = 3 + 25 * np.sin(i / 3 + rng.uniform(0, 6)) / 3
        dy = 13 * np.cos(i / 3 + rng.uniform(0, 6))
        eos = (rng.random(length + 1) < 0.03).astype(float)
        out.append(np.stack([dx, dy, eos], 1).astype("float32"))
    return out, (3.0, 0.0), (10.0, 10.0)


def measure(jit, lines, mean, std, args):
    import keras
    import numpy as np

    from zoo.models.predictor import HandwritingPredictor
    from zoo.training.graves_rmsprop import GravesRMSprop

    keras.utils.set_random_seed(0)
    model = HandwritingPredictor(units=args.units, num_layers=args.layers, num_mixtures=args.mixtures, offset_mean=mean, offset_std=std)
    model.build()
    model.compile(optimizer=GravesRMSprop(), jit_compile=jit)
    T = args.length
    x = np.stack([model.normalize(ln[:T]) for ln in lines[: args.batch_size]])
    y = np.concatenate([np.stack([model.normalize(ln[1 : T + 1]) for ln in lines[: args.batch_size]]), np.ones((len(x), T, 1), "float32")], -1)
    t0 = time.perf_counter()
    model.train_on_batch(x, y)  # trace (and, with XLA, compile)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(args.steps):
        model.train_on_batch(x, y)
    seconds = (time.perf_counter() - t0) / args.steps
    return {"compile_s": compile_s, "step_s": seconds, "points_per_s": x.shape[0] * T / seconds}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("ZOO_DATA_DIR"), help="IAM-OnDB folder or cache (default: $ZOO_DATA_DIR)")
    p.add_argument("--units", type=int, default=400)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--mixtures", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--length", type=int, default=256, help="points per line in the timed batch")
    p.add_argument("--steps", type=int, default=5, help="timed steps per mode")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    _silence_native_stderr()
    from zoo import backend

    if args.data:
        lines, mean, std = real_lines(args.data, args.batch_size, args.length)
        source = "IAM-OnDB trainset lines"
    else:
        lines, mean, std = synthetic_lines(args.batch_size, args.length)
        source = "synthetic lines"
    results = {mode: measure(mode == "xla", lines, mean, std, args) for mode in ("graph", "xla")}
    device = "GPU" if backend.has_gpu() else f"CPU ({os.cpu_count()} cores)"
    ratio = results["xla"]["points_per_s"] / results["graph"]["points_per_s"]
    if args.json:
        print(json.dumps({"device": device, "backend": backend.name(), "source": source, "config": vars(args), **results, "xla_over_graph": ratio}))
        return
    print(f"train step, {args.layers}x{args.units} LSTM, M={args.mixtures}, batch {args.batch_size} x {args.length} points of {source}, {backend.name()} on {device}")
    print(f"{'mode':<8}{'compile s':>12}{'s / step':>12}{'points / s':>14}")
    for mode, r in results.items():
        print(f"{mode:<8}{r['compile_s']:>12.1f}{r['step_s']:>12.3f}{r['points_per_s']:>14,.0f}")
    print(f"XLA / graph throughput: {ratio:.2f}x")


if __name__ == "__main__":
    main()
