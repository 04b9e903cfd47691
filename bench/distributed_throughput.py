"""Data-parallel training throughput: real pen points per second on 1 and N replicas, side by side.

The handwriting predictor (Graves' RMSProp, eq. 28's clips) trains on one global batch
of ``--batch-size`` lines of ``--length`` points, through `model.fit` as `zoo train`
does: on one device (no distribution), then with `--distribute data-parallel`'s engine
(zoo/distribute.py: JAX DataParallel, TensorFlow MirroredStrategy) over N replicas, the
same global batch split by lines. A device count is fixed when a backend starts, so each
configuration runs in a process of its own, with ``ZOO_CPU_DEVICES=N`` on a CPU (N logical
CPU devices) or, on a GPU machine, all its GPUs for the data-parallel row. After
``--warmup`` steps (tracing, compiling), ``--steps`` steps are timed; points per second
count every point of the batch (the lines are cut to ``--length``, no padding).

    python bench/distributed_throughput.py                          # TensorFlow, and JAX when $ZOO_JAX_PYTHON is set
    python bench/distributed_throughput.py --replicas 1 2 4 --units 400 --layers 3
    python bench/distributed_throughput.py --backends jax --jax-python ../jaxenv/bin/python --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def synthetic_lines(count, length, seed=0):
    """Handwriting-like pen offsets (loops moving right, a pen lift now and then)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        i = np.arange(length + 1)
        dx = 3 + 25 * np.sin(i / 3 + rng.uniform(0, 6)) / 3
        dy = 13 * np.cos(i / 3 + rng.uniform(0, 6))
        eos = (rng.random(length + 1) < 0.03).astype(float)
        out.append(np.stack([dx, dy, eos], 1).astype("float32"))
    return out


def child(args) -> dict:
    """One configuration, in this process: ``args.replicas`` devices (1: no distribution)."""
    sys.path.insert(0, REPO)
    if not os.environ.get("ZOO_DEBUG"):
        import warnings

        warnings.filterwarnings("ignore")
    import keras

    from zoo import backend, distribute
    from zoo.data.pipeline import LineBatches
    from zoo.models.predictor import HandwritingPredictor
    from zoo.training.graves_rmsprop import GravesRMSprop

    plan = distribute.setup() if args.replicas > 1 else None
    keras.utils.set_random_seed(0)
    lines = synthetic_lines(args.batch_size, args.length)
    mean, std = (3.0, 0.0), (10.0, 10.0)
    model = HandwritingPredictor(units=args.units, num_layers=args.layers, num_mixtures=args.mixtures, offset_mean=mean, offset_std=std)
    model.build()
    model.compile(optimizer=GravesRMSprop(), jit_compile=backend.default_jit_compile())
    steps = args.warmup + args.steps
    # One batch of every line, ``steps`` times (a pass is that one batch).
    data = LineBatches([model.normalize(ln) for ln in lines], batch_size=args.batch_size, shuffle=False, pad_to=args.length, steps_per_epoch=steps)
    data = distribute.shard(data, training=True)
    distribute.prepare(model)

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    clock = Clock()
    stream = backend.fit_data(data, repeat=True)  # as trainer.fit feeds it
    started = time.perf_counter()
    model.fit(stream, steps_per_epoch=steps if stream is not data else None, epochs=1, callbacks=[clock], verbose=0)
    step_s = (clock.ends[-1] - clock.ends[args.warmup - 1]) / args.steps
    return {
        "backend": backend.name(),
        "replicas": plan.devices if plan else 1,
        "device": "GPU" if backend.has_gpu() else "CPU",
        "warmup_s": round(clock.ends[args.warmup - 1] - started, 2),
        "step_s": step_s,
        "points_per_s": args.batch_size * args.length / step_s,
    }


def run_child(python, backend, replicas, args) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("ZOO_CPU_DEVICES", None)
    if replicas > 1:
        env["ZOO_CPU_DEVICES"] = str(replicas)  # on a CPU; a GPU machine's data-parallel row uses all its GPUs
    flags = ["--units", args.units, "--layers", args.layers, "--mixtures", args.mixtures, "--batch-size", args.batch_size,
             "--length", args.length, "--steps", args.steps, "--warmup", args.warmup]
    proc = subprocess.run([python, os.path.abspath(__file__), "--child", str(replicas), *map(str, flags)],
                          env=env, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"{backend} with {replicas} replica(s) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", nargs="+", choices=["tensorflow", "jax"], help="default: tensorflow, and jax when a JAX Python is known")
    p.add_argument("--jax-python", default=os.environ.get("ZOO_JAX_PYTHON"), help="a Python with jax and keras (default: $ZOO_JAX_PYTHON)")
    p.add_argument("--replicas", nargs="+", type=int, default=[1, 2], help="replica counts to time (1: one device, no distribution)")
    p.add_argument("--units", type=int, default=400)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--mixtures", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32, help="the global batch, split over the replicas")
    # 64, not 256: at 16 lines x 256 points per device, JAX's two logical devices on a 2-core CPU deadlocked in
    # jaxlib's LAPACK kernel (zoo/backend.py, configure_cpu_devices); on a GPU or a larger CPU give --length 256.
    p.add_argument("--length", type=int, default=64, help="points per line (default: %(default)s)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (tracing, compiling)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        args.replicas = args.child
        print(json.dumps(child(args)))
        return
    backends = args.backends or (["tensorflow"] + (["jax"] if args.jax_python else []))
    pythons = {"tensorflow": sys.executable, "jax": args.jax_python}
    if "jax" in backends and not args.jax_python:
        raise SystemExit("--backends jax needs --jax-python (or $ZOO_JAX_PYTHON): a Python with jax, keras==3.15.1 and tfp-nightly")
    rows = [run_child(pythons[b], b, n, args) for b in backends for n in args.replicas]
    base = {r["backend"]: r["points_per_s"] for r in rows if r["replicas"] == 1}
    for r in rows:
        r["vs_one"] = r["points_per_s"] / base[r["backend"]] if r["backend"] in base else None
    config = {k: getattr(args, k) for k in ("units", "layers", "mixtures", "batch_size", "length", "steps", "warmup")}
    if args.json:
        print(json.dumps({"config": config, "cpu_cores": os.cpu_count(), "rows": rows}))
        return
    print(
        f"train step, {args.layers}x{args.units} LSTM predictor, M={args.mixtures}, global batch {args.batch_size} x {args.length} points "
        f"(synthetic lines), {os.cpu_count()} CPU cores"
    )
    print(f"{'backend':<12}{'device':<8}{'replicas':>9}{'warm-up s':>11}{'s / step':>10}{'points / s':>12}{'vs 1':>7}")
    for r in rows:
        ratio = f"{r['vs_one']:.2f}" if r["vs_one"] is not None else "-"
        print(f"{r['backend']:<12}{r['device']:<8}{r['replicas']:>9}{r['warmup_s']:>11.1f}{r['step_s']:>10.3f}{r['points_per_s']:>12,.0f}{ratio:>7}")


if __name__ == "__main__":
    main()
