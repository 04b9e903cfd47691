"""Training throughput of the handwriting networks on real IAM-OnDB batches, in real pen points per second.

The batches are the ones `zoo train` trains on by default on this machine:
`zoo.data.pipeline.batches_for` over the training lines (trainset +
testset_t + testset_f), the default batch size, `pad_to` 32 in graph mode on
a CPU (128 under XLA or JAX), shuffled length buckets, seed 0, each line with
its real length and its padding, Graves' RMSProp, and the same compiled train
function that `model.fit` calls (a tf.data stream whose batch and time axes
are unknown, traced once). After ``--warmup`` batches, ``--batches`` further
batches of that stream are timed; the throughput counts real (unpadded) pen
points, i.e. the targets that the loss reads.

``--compare-commit REV`` also times the code of an earlier commit in the same
run: REV is checked out into a temporary ``git worktree`` (removed
afterwards), and both versions train in their own subprocess, each with its
own tree first on ``sys.path`` (its own model classes and Keras train step),
on the same batches (handed over in a temporary .npz) from the same initial
weights (copied by order when the layouts match; the output says when they do
not). The timed batches are split into ``--rounds`` rounds (default: one per
batch) run in the order new, old, old, new, new, old, ... so that drift in the
machine's other load falls on both alike; besides the ratio of the real points
per second it prints the median of the per-batch time ratios, which a burst of
other load moves less. The loss of the first batch, before any update, is
compared between the two (to 1e-4 of the loss: `loss_agrees`).

    python bench/train_throughput.py                      # 3x400 synthesis, K=10, M=20
    python bench/train_throughput.py --model prediction --units 400 --layers 3
    python bench/train_throughput.py --compare-commit 89e4269 --batches 8
    python bench/train_throughput.py --model synthesis --json
    python bench/train_throughput.py --ceiling                # and what this CPU's matrix products allow

``--ceiling`` puts the figure beside what the arithmetic allows. A train step
is mostly matrix products: 2 D N operations per row for each weight matrix
(D x N) forward, as many again for the input gradient and for the weight
gradient, so 6 x (the weights in matrices) operations per padded pen point
(the mixture's and the gates' element-wise work comes on top). The bench
times this CPU's float32 products, once as one large square product (the
machine's peak) and once in the shapes of the time loop (B rows times each
LSTM kernel, its input-gradient and weight-gradient products), and prints the
step's achieved operations per second, its share of the peak, and the real
points per second that the loop's own products would allow if the step did
nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CACHE = os.path.join(REPO, "cache", "iam-ondb.npz")
# The first batch's losses (nats per line, ~2,400 for 3x400 at its initial weights) must agree to this
# fraction of the loss: an absolute 1e-4 is finer than float32 resolves there (one ulp is 2.4e-4 from 2,048 up).
LOSS_TOLERANCE = 1e-4


def _quiet_native_logs(native_stderr_off: bool = False) -> None:
    """TensorFlow's C++ start-up logs off (set before it is imported); ZOO_DEBUG=1 keeps them.

    With ``native_stderr_off`` file descriptor 2 goes to /dev/null while Python's sys.stderr
    stays on the terminal (as `zoo` does), since some of those logs come before any setting
    is read. The measuring subprocesses write their stderr to a log file instead."""
    if os.environ.get("ZOO_DEBUG"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    warnings.filterwarnings("ignore", module=r"(tensorflow|tensorflow_probability|keras|absl)")
    if native_stderr_off:
        try:
            saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
            sys.stderr = os.fdopen(saved, "w", buffering=1)
        except OSError:
            pass


# ---------------------------------------------------------------- the measurement (runs on any tree's code)


class Trainer:
    """One version of the code training on the planned batches.

    Uses only what every version of the zoo has: the model classes, their
    Alphabet and GravesRMSprop, and Keras' own compiled train step; ``zoo``
    is whichever tree is first on sys.path."""

    def __init__(self, meta: dict, batches: list, weights: list | None):
        import keras

        from zoo.training.graves_rmsprop import GravesRMSprop

        self.meta = meta
        self.batches = batches  # [(inputs, targets)], warm-up ones first
        keras.utils.set_random_seed(meta["seed"])
        cfg = meta["config"]
        common = dict(units=cfg["units"], num_layers=cfg["layers"], num_mixtures=cfg["mixtures"], offset_mean=meta["offset_mean"], offset_std=meta["offset_std"])
        if meta["model"] == "synthesis":
            from zoo.data.alphabet import Alphabet
            from zoo.models.synthesizer import HandwritingSynthesizer

            model = HandwritingSynthesizer(Alphabet(**meta["alphabet"]), window_components=cfg["window_components"], **common)
        else:
            from zoo.models.predictor import HandwritingPredictor

            model = HandwritingPredictor(**common)
        model.build()
        self.weights_note = "initial weights copied by order"
        self.weights_copied = True
        if weights is not None:
            mine = [tuple(w.shape) for w in model.get_weights()]
            given = [tuple(w.shape) for w in weights]
            if mine == given:
                model.set_weights(weights)
            else:
                self.weights_copied = False
                self.weights_note = f"weight layouts differ ({len(given)} arrays given, {len(mine)} here, or other shapes): this code starts from its own initial weights (seed {meta['seed']})"
        model.compile(optimizer=GravesRMSprop(), jit_compile=meta["xla"])
        self.model = model
        self.traces = 0
        self.step = self._compiled_step()
        self.next = 0  # the next batch of the planned stream

    def _compiled_step(self):
        """The function `model.fit` calls per batch, fed as `fit` feeds it (see zoo.backend.fit_data)."""
        import keras

        model = self.model
        inner = model.train_step

        def counted(data):
            self.traces += 1  # runs only while tracing
            return inner(data)

        model.train_step = counted
        if keras.backend.backend() != "tensorflow":
            return lambda: model.train_on_batch(*self.batches[self._take()], return_dict=True)
        import tensorflow as tf

        first = self.batches[0]
        spec = tf.nest.map_structure(
            lambda a: tf.TensorSpec((None,) * (a.ndim - 1) + ((a.shape[-1],) if a.ndim >= 3 else (None,)), tf.as_dtype(a.dtype)), first
        )

        def planned():
            while self.next < len(self.batches):
                yield self.batches[self._take()]

        iterator = iter(tf.data.Dataset.from_generator(planned, output_signature=spec))
        model._maybe_symbolic_build(data_batch=first)
        model.make_train_function()
        return lambda: model.train_function(iterator)

    def _take(self) -> int:
        i = self.next
        self.next += 1
        return i

    def train(self, count: int) -> dict:
        """Train on the next ``count`` planned batches: seconds (wall, and CPU of this process) of each, losses, traces made."""
        seconds, cpu, losses, traces = [], [], [], self.traces
        for _ in range(count):
            c0, t0 = time.process_time(), time.perf_counter()
            logs = self.step()
            loss = float(logs["loss"])  # waits for the step
            seconds.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            losses.append(loss)
        return {"seconds": seconds, "cpu_seconds": cpu, "losses": losses, "traces": self.traces - traces}


def serve(root: str, batches_path: str) -> None:
    """A subprocess: the code of the tree at ``root`` answers one JSON line per command on stdin."""
    sys.path.insert(0, root)
    out = sys.stdout
    sys.stdout = sys.stderr  # only answers on stdout
    _quiet_native_logs()
    meta, batches, weights = load_plan(batches_path)
    trainer = None
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        try:
            if cmd[0] == "setup":
                trainer = Trainer(meta, batches, weights)
                answer = {"weights_copied": trainer.weights_copied, "weights_note": trainer.weights_note, "weights": trainer.model.count_params()}
            elif cmd[0] == "train":
                answer = trainer.train(int(cmd[1]))
            elif cmd[0] == "quit":
                return
            else:
                answer = {"error": f"unknown command {cmd[0]!r}"}
        except Exception as exc:  # reported to the parent, which stops
            import traceback

            traceback.print_exc()
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()


# ---------------------------------------------------------------- the plan: batches and weights, shared by both versions


def save_plan(path, meta, batches, weights) -> None:
    import numpy as np

    arrays = {"meta": np.asarray(json.dumps(meta))}
    for i, (inputs, targets) in enumerate(batches):
        if isinstance(inputs, tuple):
            arrays[f"x{i}"], arrays[f"ids{i}"] = inputs
        else:
            arrays[f"x{i}"] = inputs
        arrays[f"y{i}"] = targets
    for j, w in enumerate(weights):
        arrays[f"w{j}"] = w
    np.savez(path, **arrays)


def load_plan(path):
    import numpy as np

    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        batches = []
        for i in range(meta["planned_batches"]):
            x = z[f"x{i}"]
            inputs = (x, z[f"ids{i}"]) if f"ids{i}" in z.files else x
            batches.append((inputs, z[f"y{i}"]))
        weights = [z[f"w{j}"] for j in range(meta["weight_arrays"])]
    return meta, batches, weights


def make_plan(args):
    """The model this tree builds and the first warm-up + timed batches of `zoo train`'s default stream."""
    import keras
    import numpy as np

    from zoo import backend
    from zoo.data.alphabet import Alphabet
    from zoo.data.cache import load_handwriting
    from zoo.data.pipeline import batches_for
    from zoo.models import HandwritingPredictor, HandwritingSynthesizer

    data = load_handwriting(args.data, progress=False)
    idx = data.split_indices("train")
    raw, texts = [data.line(i) for i in idx], [data.texts[i] for i in idx]
    mean, std = data.normalization("train")
    xla = backend.default_jit_compile() if args.xla is None else args.xla
    pad_to = args.pad_to or (128 if (xla or backend.name() == "jax") else 32)  # as zoo train (zoo/cli/handwriting.py)
    keras.utils.set_random_seed(args.seed)
    common = dict(units=args.units, num_layers=args.layers, num_mixtures=args.mixtures, offset_mean=mean, offset_std=std)
    if args.model == "synthesis":
        model = HandwritingSynthesizer(Alphabet.from_texts(texts), window_components=args.window_components, **common)
    else:
        model = HandwritingPredictor(**common)
    model.build()
    stream = batches_for(model, raw, texts, batch_size=args.batch_size, pad_to=pad_to, shuffle=True, seed=args.seed)
    count = args.warmup + args.batches
    if count > len(stream):
        raise SystemExit(f"--warmup + --batches is {count}, more than the {len(stream)} batches of one pass")
    batches = [stream[i] for i in range(count)]
    timed = batches[args.warmup :]
    real = int(sum(y[..., 3].sum() for _, y in timed))
    padded = int(sum(y.shape[0] * y.shape[1] for _, y in timed))
    meta = {
        "model": args.model,
        "config": {k: getattr(args, k) for k in ("units", "layers", "mixtures", "window_components", "batch_size")},
        "pad_to": pad_to,
        "xla": bool(xla),
        "seed": args.seed,
        "offset_mean": [float(v) for v in mean],
        "offset_std": [float(v) for v in std],
        "alphabet": model.alphabet.get_config() if args.model == "synthesis" else None,
        "planned_batches": count,
        "warmup": args.warmup,
        "weight_arrays": len(model.get_weights()),
        "real_points": real,
        "padded_points": padded,
        "stream_padding": float(stream.padding_fraction()),
        "timed_shapes": [list(y.shape[:2]) + ([int(x[1].shape[1])] if isinstance(x, tuple) else []) for x, y in timed],
    }
    if args.model != "synthesis":
        meta["config"].pop("window_components")
    return meta, batches, [np.asarray(w) for w in model.get_weights()]


# ---------------------------------------------------------------- the ceiling: what the products allow


def matmul_rate(shapes, xla: bool = False, seconds: float = 0.5, per_call: int = 8) -> float:
    """Operations per second of float32 products (m, k, n), compiled by the active backend as the
    train step is (tf.function, with XLA under ``xla``; jax.jit on JAX). Each shape is timed for
    about ``seconds``; the rate returned is that of doing each product once (the step does equal
    work in each of a layer's three products), i.e. the work-weighted harmonic mean of the shapes'
    rates. Each call runs ``per_call`` products (of slightly shifted inputs, so no compiler merges
    them), so the Python call's own cost does not count against products as small as the loop's."""
    import keras
    import numpy as np

    from zoo import backend

    def products(a, b):
        return sum(keras.ops.sum(keras.ops.matmul(a + float(i), b)) for i in range(per_call))

    if backend.name() == "jax":
        import jax

        product = jax.jit(products)
        wait = lambda r: r.block_until_ready()  # noqa: E731
    else:
        import tensorflow as tf

        product = tf.function(products, jit_compile=xla)
        wait = lambda r: r.numpy()  # noqa: E731
    rng = np.random.default_rng(0)
    work = seconds_for_each = 0.0
    for m, k, n in shapes:
        a = keras.ops.convert_to_tensor(rng.standard_normal((m, k), dtype=np.float32))
        b = keras.ops.convert_to_tensor(rng.standard_normal((k, n), dtype=np.float32))
        wait(product(a, b))  # compile
        calls, t0 = 0, time.perf_counter()
        while True:
            wait(product(a, b))
            calls += 1
            if time.perf_counter() - t0 >= seconds:
                break
        work += 2.0 * m * k * n
        seconds_for_each += (time.perf_counter() - t0) / (per_call * calls)
    return work / seconds_for_each


def ceiling(meta, weights, rate: float) -> dict:
    """The step's arithmetic against this CPU's products: operations per padded point, achieved
    rate, the peak, the loop-shaped rate, and the real points per second those allow."""
    units, batch = meta["config"]["units"], meta["config"]["batch_size"]
    # Weight matrices: the LSTM kernels (input and recurrent), the window's and the output layer's;
    # not the peepholes (3, H), which multiply element-wise.
    matrices = [tuple(w.shape) for w in weights if w.ndim == 2 and w.shape != (3, units)]
    per_point = 6.0 * sum(d * n for d, n in matrices)  # forward, input gradient, weight gradient
    # The time loop's products: each layer's fused [W_x; W_h] (D + H rows, 4H columns), forward, input and weight gradient.
    loop = [(d + units, n) for d, n in matrices if n == 4 * units and d != units]
    shapes = [s for d, n in loop for s in ((batch, d, n), (batch, n, d), (d, batch, n))]
    peak = matmul_rate([(2048, 2048, 2048)], xla=meta["xla"])
    loop_rate = matmul_rate(shapes, xla=meta["xla"])
    real_share = meta["real_points"] / meta["padded_points"]
    achieved = rate / real_share * per_point
    return {
        "operations_per_padded_point": per_point,
        "achieved_ops_per_s": achieved,
        "peak_ops_per_s": peak,
        "loop_product_ops_per_s": loop_rate,
        "share_of_peak": achieved / peak,
        "real_points_per_s_at_loop_rate": loop_rate / per_point * real_share,
        "real_points_per_s_at_peak": peak / per_point * real_share,
    }


# ---------------------------------------------------------------- running it


def git(*argv, cwd=REPO) -> str:
    return subprocess.run(["git", *argv], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def describe_tree() -> str:
    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "zoo")
        return head + ("+uncommitted changes under zoo/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class Worker:
    """A subprocess running `serve` on one tree's code."""

    def __init__(self, name: str, root: str, plan_path: str, log_dir: str):
        self.name = name
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.log = open(self.log_path, "w")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.proc = subprocess.Popen(
            [sys.executable, "-u", os.path.abspath(__file__), "--serve", root, "--plan", plan_path],
            cwd=root, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
        )

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        answer = json.loads(line) if line else {"error": "the process ended"}
        if "error" in answer:
            self.log.flush()
            with open(self.log_path) as f:
                tail = f.read()[-3000:]
            raise RuntimeError(f"{self.name} code: {answer['error']}\n{tail}")
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class InProcess:
    """The code of this tree in this process (no comparison)."""

    def __init__(self, meta, batches, weights):
        self.meta, self.batches, self.weights = meta, batches, weights

    def ask(self, command: str) -> dict:
        cmd = command.split()
        if cmd[0] == "setup":
            self.trainer = Trainer(self.meta, self.batches, self.weights)
            return {"weights_copied": True, "weights_note": "", "weights": self.trainer.model.count_params()}
        return self.trainer.train(int(cmd[1]))

    def close(self) -> None:
        pass


@contextlib.contextmanager
def worktree(rev: str):
    """A temporary checkout of ``rev``, removed on the way out (also on error)."""
    parent = tempfile.mkdtemp(prefix="zoo-bench-")
    path = os.path.join(parent, "tree")
    try:
        git("worktree", "add", "--detach", path, rev)
        yield path
    finally:
        try:
            if os.path.isdir(path):
                git("worktree", "remove", "--force", path)
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(parent, ignore_errors=True)
        with contextlib.suppress(subprocess.CalledProcessError):
            git("worktree", "prune")


def chunks(total: int, rounds: int) -> list[int]:
    rounds = max(1, min(rounds, total))
    return [total // rounds + (1 if r < total % rounds else 0) for r in range(rounds)]


def run(args, log=print) -> dict:
    meta, batches, weights = make_plan(args)
    shapes = ", ".join("x".join(str(v) for v in s) for s in meta["timed_shapes"])
    log(
        f"{meta['model']} {args.layers}x{args.units}, M={args.mixtures}"
        + (f", K={args.window_components}" if args.model == "synthesis" else "")
        + f"; {args.warmup} warm-up + {args.batches} timed batches of `zoo train`'s stream (batch {args.batch_size}, pad_to {meta['pad_to']}, "
        f"XLA {'on' if meta['xla'] else 'off'}); timed batch shapes B x T" + (" x U" if args.model == "synthesis" else "") + f": {shapes}; "
        f"{meta['real_points']:,} real of {meta['padded_points']:,} padded points (the whole pass pads {100 * meta['stream_padding']:.1f}%)"
    )
    result = {
        "model": args.model,
        "config": {**meta["config"], "pad_to": meta["pad_to"], "xla": meta["xla"], "warmup": args.warmup, "batches": args.batches, "seed": args.seed},
        "device": f"CPU ({os.cpu_count()} cores)",
        "commit": describe_tree(),
        "real_points": meta["real_points"],
        "padded_points": meta["padded_points"],
    }
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="zoo-bench-plan-"))
        if args.compare_commit:
            plan = os.path.join(tmp, "plan.npz")
            save_plan(plan, meta, batches, weights)
            old_root = stack.enter_context(worktree(args.compare_commit))
            result["baseline_commit"] = git("rev-parse", "--short=12", "HEAD", cwd=old_root)
            workers = {"new": Worker("new", REPO, plan, tmp), "old": Worker("old", old_root, plan, tmp)}
        else:
            workers = {"new": InProcess(meta, batches, weights)}
        try:
            setup, warm = {}, {}
            for name, w in workers.items():
                t0 = time.perf_counter()
                setup[name] = w.ask("setup")
                warm[name] = w.ask(f"train {args.warmup}")
                log(f"{name}: {setup[name]['weights']:,} weights; set-up and {args.warmup} warm-up batches {time.perf_counter() - t0:.1f} s; first batch loss {warm[name]['losses'][0]:.6f}")
            seconds = {name: [] for name in workers}
            cpu = {name: [] for name in workers}
            traced = {name: 0 for name in workers}
            order = list(workers)
            rounds = chunks(args.batches, args.rounds or args.batches)
            for r, count in enumerate(rounds):
                for name in order if r % 2 == 0 else order[::-1]:
                    answer = workers[name].ask(f"train {count}")
                    seconds[name] += answer["seconds"]
                    cpu[name] += answer["cpu_seconds"]
                    traced[name] += answer["traces"]
                    log(f"round {r + 1}, {name}: " + " ".join(f"{s:.2f}" for s in answer["seconds"]) + " s per batch (CPU " + " ".join(f"{s:.2f}" for s in answer["cpu_seconds"]) + ")")
        finally:
            for w in workers.values():
                w.close()
    for name in workers:
        if traced[name]:
            log(f"warning: the {name} code traced its train step again during the timed batches ({traced[name]} times): give more --warmup")
    rate = {name: meta["real_points"] / sum(s) for name, s in seconds.items()}
    result.update(
        real_points_per_s=rate["new"],
        seconds_per_batch=sum(seconds["new"]) / len(seconds["new"]),
        cpu_seconds_per_batch=sum(cpu["new"]) / len(cpu["new"]),
        loss_first_batch=warm["new"]["losses"][0],
    )
    if args.ceiling:
        log("timing this CPU's float32 products (--ceiling) ...")
        result["ceiling"] = ceiling(meta, weights, rate["new"])
    if args.compare_commit:
        diff = abs(warm["new"]["losses"][0] - warm["old"]["losses"][0])
        result.update(
            baseline_real_points_per_s=rate["old"],
            baseline_seconds_per_batch=sum(seconds["old"]) / len(seconds["old"]),
            baseline_cpu_seconds_per_batch=sum(cpu["old"]) / len(cpu["old"]),
            ratio=rate["new"] / rate["old"],
            median_batch_ratio=float(statistics.median(o / n for o, n in zip(seconds["old"], seconds["new"]))),
            cpu_ratio=sum(cpu["old"]) / sum(cpu["new"]),
            baseline_loss_first_batch=warm["old"]["losses"][0],
            loss_diff=diff,
            loss_rel_diff=diff / max(abs(warm["old"]["losses"][0]), 1e-30),
            loss_agrees=bool(setup["old"]["weights_copied"] and diff <= LOSS_TOLERANCE * max(1.0, abs(warm["old"]["losses"][0]))),
            weights_copied=setup["old"]["weights_copied"],
            rounds=len(rounds),
        )
        if not setup["old"]["weights_copied"]:
            result["weights_note"] = setup["old"]["weights_note"]
    return result


def report(result) -> None:
    print(
        f"this tree ({result['commit']}): {result['real_points_per_s']:,.0f} real points/s, "
        f"{result['seconds_per_batch']:.2f} s per batch ({result['cpu_seconds_per_batch']:.2f} s CPU)"
    )
    if "ceiling" in result:
        c = result["ceiling"]
        print(
            f"arithmetic: {c['operations_per_padded_point'] / 1e6:.1f} M operations per padded point (matrix products), "
            f"{c['achieved_ops_per_s'] / 1e9:.0f} G/s achieved = {100 * c['share_of_peak']:.0f}% of this CPU's float32 peak "
            f"({c['peak_ops_per_s'] / 1e9:.0f} G/s, one 2048^3 product); the time loop's own products run at "
            f"{c['loop_product_ops_per_s'] / 1e9:.0f} G/s"
        )
        print(
            f"ceiling: {c['real_points_per_s_at_loop_rate']:,.0f} real points/s if the step were nothing but the loop's products, "
            f"{c['real_points_per_s_at_peak']:,.0f} at the peak "
            f"({c['real_points_per_s_at_loop_rate'] / result['real_points_per_s']:.2f}x and "
            f"{c['real_points_per_s_at_peak'] / result['real_points_per_s']:.2f}x this tree)"
        )
    if "baseline_real_points_per_s" in result:
        print(
            f"{result['baseline_commit']}: {result['baseline_real_points_per_s']:,.0f} real points/s, "
            f"{result['baseline_seconds_per_batch']:.2f} s per batch ({result['baseline_cpu_seconds_per_batch']:.2f} s CPU)"
        )
        print(
            f"ratio (this tree / {result['baseline_commit']}): {result['ratio']:.2f}x real points/s; "
            f"median per-batch time ratio {result['median_batch_ratio']:.2f}x; CPU time ratio {result['cpu_ratio']:.2f}x"
        )
        if result["weights_copied"]:
            print(
                f"first batch loss, same weights: {result['loss_first_batch']:.6f} vs {result['baseline_loss_first_batch']:.6f} "
                f"(difference {result['loss_diff']:.2e}, relative {result['loss_rel_diff']:.1e}: "
                f"{'within' if result['loss_agrees'] else 'NOT within'} {LOSS_TOLERANCE:g} relative)"
            )
        else:
            print(f"first batch loss NOT comparable: {result['weights_note']}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("synthesis", "prediction"), default="synthesis")
    p.add_argument("--data", default=os.environ.get("ZOO_DATA_DIR") or DEFAULT_CACHE, help="IAM-OnDB folder, data root or prepared cache (default: $ZOO_DATA_DIR, else cache/iam-ondb.npz)")
    p.add_argument("--units", type=int, default=400)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--mixtures", type=int, default=20)
    p.add_argument("--window-components", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32, help="as `zoo train` (default 32)")
    p.add_argument("--pad-to", type=int, help="as `zoo train` (default: 32, or 128 under XLA/JAX)")
    xla = p.add_mutually_exclusive_group()
    xla.add_argument("--xla", dest="xla", action="store_true", default=None, help="XLA-compile the train step (default on a GPU)")
    xla.add_argument("--no-xla", dest="xla", action="store_false")
    p.add_argument("--seed", type=int, default=0, help="the stream's and the initial weights' seed (zoo train's default 0)")
    p.add_argument("--warmup", type=int, default=2, help="batches trained before timing (tracing)")
    p.add_argument("--batches", type=int, default=8, help="timed batches")
    p.add_argument("--rounds", type=int, help="with --compare-commit: rounds the timed batches are split into, alternating the two codes (default: one per batch)")
    p.add_argument("--compare-commit", metavar="REV", help="also time the code of REV (a temporary git worktree) on the same batches and weights")
    p.add_argument("--ceiling", action="store_true", help="also time this CPU's float32 products: the step's share of the peak and the points/s they allow")
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else on stdout")
    p.add_argument("--serve", metavar="ROOT", help=argparse.SUPPRESS)
    p.add_argument("--plan", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        return serve(args.serve, args.plan)
    if args.warmup < 1 or args.batches < 1:
        p.error("--warmup and --batches must be at least 1")
    _quiet_native_logs(native_stderr_off=True)
    sys.path.insert(0, REPO)
    if args.json:
        with contextlib.redirect_stdout(sys.stderr):
            result = run(args, log=lambda s: print(s, file=sys.stderr))
        print(json.dumps(result))
    else:
        report(run(args))


if __name__ == "__main__":
    main()
