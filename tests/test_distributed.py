"""Data-parallel training (zoo/distribute.py) takes the steps one device takes.

Every model kind (prediction, synthesis, recognizer, text) trains a few one-batch epochs
through `trainer.fit` on one device and on two, from the same weights on the same global
batches, and the losses, validation losses, weights (the text model's carried state
included) and optimizer slots must agree within 1e-5. The models are tiny and their
derivative clips tight (eq. 28, sec. 3.1), so the clips act; the recognizer's Adam has a
clipnorm that acts too; the text model takes plain SGD steps, which show any error of the
gradient's scale at once. Devices: two logical CPUs (``ZOO_CPU_DEVICES=2``) on TensorFlow
(MirroredStrategy) and on JAX (DataParallel), and two processes on 127.0.0.1: JAX's joined
at a coordinator, TensorFlow's workers through TF_CONFIG (MultiWorkerMirroredStrategy).

The device counts are fixed when a backend starts, so each check runs in a process of its
own: this file, run as a script, is that process (``parity`` or ``processes``), and prints
the differences as JSON. The JAX checks need ``ZOO_JAX_PYTHON`` (`.ci/run` sets it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
KINDS = ("prediction", "synthesis", "recognizer", "text")
TOLERANCE = 1e-5
JAX_PYTHON = os.environ.get("ZOO_JAX_PYTHON")

# ---------------------------------------------------------------- the worker (run as a script)


def synthetic_lines(count=11, seed=0, points=(10, 20)):
    """Pen offsets of different lengths and texts of 1-3 characters (at 26 points or more CTC can read them)."""
    rng = np.random.default_rng(seed)
    lines, texts = [], []
    for n in rng.integers(*points, count):
        line = np.zeros((n, 3), np.float32)
        line[1:, 0] = rng.normal(2.0, 3.0, n - 1)
        line[1:, 1] = rng.normal(0.0, 3.0, n - 1)
        line[1:, 2] = rng.random(n - 1) < 0.1
        lines.append(line)
        texts.append("".join(rng.choice(list("ab c"), 3)).strip() or "a")
    return lines, texts


def tiny(kind):
    """A tiny model of ``kind``, built and compiled under the current plan, and its train and validation batches."""
    import keras

    from zoo.data.alphabet import Alphabet
    from zoo.data.pipeline import TextStreams, batches_for
    from zoo.models import HandwritingPredictor, HandwritingRecognizer, HandwritingSynthesizer
    from zoo.training.graves_rmsprop import GravesRMSprop

    keras.utils.set_random_seed(0)
    if kind == "text":
        from zoo.data.text import Vocabulary
        from zoo.models.language import LanguageModel
        from zoo.training.tbptt import CarriedState

        ids = np.random.default_rng(1).integers(1, 6, 400).astype(np.int32)
        network = LanguageModel(Vocabulary(list("abcde")), units=6, num_layers=1, lstm_clip=0.01)
        model = CarriedState(network, batch_size=4)
        model.build()
        model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.9))
        # reset_every=2: the carried state is zeroed, kept, zeroed; 3 validation streams split unevenly.
        return model, TextStreams(ids[:300], 4, 6, reset_every=2, steps_per_epoch=1), TextStreams(ids[300:], 3, 6)
    points = (26, 42) if kind == "recognizer" else (10, 20)
    lines, texts = synthetic_lines(points=points)
    offsets = np.concatenate([ln[1:, :2] for ln in lines])
    norm = dict(offset_mean=offsets.mean(0), offset_std=offsets.std(0))
    if kind == "recognizer":
        model = HandwritingRecognizer(Alphabet.from_texts(texts), units=4, num_layers=1, filters=4, kernel_size=3, **norm)
        optimizer = keras.optimizers.Adam(0.01, clipnorm=0.1)  # the clip of the whole (summed) gradient
    else:
        clips = dict(units=6, num_layers=1, num_mixtures=2, lstm_clip=0.01, output_clip=1.0, **norm)  # eq. 28's clips, acting
        if kind == "synthesis":
            model = HandwritingSynthesizer(Alphabet.from_texts(texts), window_components=2, **clips)
        else:
            model = HandwritingPredictor(**clips)
        optimizer = GravesRMSprop(learning_rate=1e-3)
    model.build()
    model.compile(optimizer=optimizer)
    # One padded length and full training batches (8 lines in 2 batches of 4), so JAX compiles each
    # step once; the 3 validation lines do not split over two devices, which get each line twice.
    pad_to = 2 * points[1]
    train = batches_for(model, lines[:8], texts[:8], batch_size=4, pad_to=pad_to, shuffle=True, seed=0, steps_per_epoch=1)
    val = batches_for(model, lines[8:], texts[8:], batch_size=4, pad_to=pad_to, shuffle=False)
    return model, train, val


def train(kind, run_dir, distributed=False, keras_step=False, epochs=2):
    """``epochs`` one-batch epochs of `tiny(kind)` through trainer.fit; what they leave as numpy arrays.

    ``keras_step``: on TensorFlow, Keras' own train step instead of zoo/distribute.py's (the control)."""
    from zoo import distribute
    from zoo.training import trainer

    started = time.time()
    model, train_data, val_data = tiny(kind)
    if distributed:
        train_data, val_data = distribute.shard(train_data, training=True, carries_state=kind == "text"), distribute.shard(val_data)
        if not keras_step:
            distribute.prepare(model)
    state = trainer.fit(model, train_data, val_data, run_dir, epochs=epochs, patience=0, tensorboard=False, verbose=0)
    return {
        "loss": [h["loss"] for h in state["history"]],
        "val_loss": [h["val_loss"] for h in state["history"]],
        "weights": [np.asarray(w) for w in model.get_weights()],
        "slots": [np.asarray(v.numpy()) for v in model.optimizer.variables],
        "seconds": time.time() - started,
    }


def differences(one, several) -> dict:
    """Per part, the largest difference between two `train` results: absolute where a value is within
    [-1, 1], relative beyond (float32 holds a loss of 100 nats to 1e-5 only), and the absolute one too."""
    out = {"abs": {}}
    for part in ("loss", "val_loss", "weights", "slots"):
        a, b = [np.asarray(v, np.float64) for v in one[part]], [np.asarray(v, np.float64) for v in several[part]]
        assert len(a) == len(b), part
        out["abs"][part] = max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))
        out[part] = max(float(np.max(np.abs(x - y) / np.maximum(1.0, np.abs(x)))) for x, y in zip(a, b))
    out["seconds"] = [round(one["seconds"], 1), round(several["seconds"], 1)]
    return out


def parity(kinds, folder, control):
    """One device, then every local device, in this process: their differences per kind as JSON."""
    from zoo import backend, distribute

    report = {"backend": backend.name(), "devices": None, "kinds": {}}
    for kind in kinds:
        one = train(kind, os.path.join(folder, f"{kind}-one"))
        plan = distribute.setup()
        report["devices"] = plan.devices
        several = train(kind, os.path.join(folder, f"{kind}-several"), distributed=True)
        report["kinds"][kind] = differences(one, several)
        if control and kind == "text" and backend.name() == "tensorflow":
            stock = train(kind, os.path.join(folder, f"{kind}-keras-step"), distributed=True, keras_step=True)
            report["kinds"][kind]["keras_step"] = differences(one, stock)
        distribute.reset()
    return report


def processes(kinds, folder, coordinator, num_processes, process_id):
    """This process of several: each kind on all processes' devices; then process 0 alone, on one device, compares.
    JAX processes join at ``coordinator``; TensorFlow workers through TF_CONFIG (then ``coordinator`` is None)."""
    from zoo import distribute

    plan = distribute.setup(coordinator, num_processes if coordinator else None, process_id if coordinator else None)
    several = {kind: train(kind, os.path.join(folder, f"{kind}-processes"), distributed=True) for kind in kinds}
    distribute.reset()
    report = None
    if plan.is_chief:
        report = {"backend": plan.backend, "devices": plan.devices, "processes": plan.num_processes, "kinds": {}}
        for kind in kinds:
            report["kinds"][kind] = differences(train(kind, os.path.join(folder, f"{kind}-one")), several[kind])
    if plan.backend == "jax":
        import jax

        jax.distributed.shutdown()
    return report


def cli_run(data, out):
    """`zoo train --distribute data-parallel` in this process, as a user runs it; its preset's metadata."""
    from zoo.cli import main as zoo

    zoo(["train", "prediction", "--data", data, "--out", out, "--units", "6", "--layers", "1", "--mixtures", "2",
         "--batch-size", "4", "--steps-per-epoch", "1", "--epochs", "2", "--max-train-lines", "8", "--max-val-lines", "2",
         "--distribute", "data-parallel"])
    with open(os.path.join(out, "preset", "metadata.json")) as f:
        return json.load(f)


def main():
    p = argparse.ArgumentParser(description="worker of tests/test_distributed.py")
    p.add_argument("mode", choices=["parity", "processes"])
    p.add_argument("--kinds", nargs="+", default=list(KINDS))
    p.add_argument("--folder", required=True, help="run folders go here")
    p.add_argument("--control", action="store_true", help="TensorFlow: also Keras' own train step for the text model, which must differ")
    p.add_argument("--cli", nargs=2, metavar=("DATA", "OUT"), help="parity: then train a prediction network by the command line")
    p.add_argument("--coordinator")
    p.add_argument("--num-processes", type=int, default=2)
    p.add_argument("--process-id", type=int)
    args = p.parse_args()
    sys.path.insert(0, REPO)
    if args.mode == "parity":
        report = parity(args.kinds, args.folder, args.control)
        if args.cli:
            report["cli"] = cli_run(*args.cli)
    else:
        report = processes(args.kinds, args.folder, args.coordinator, args.num_processes, args.process_id)
    if report is not None:
        print("REPORT " + json.dumps(report), flush=True)


if __name__ == "__main__":
    sys.exit(main())  # the worker imports no pytest (the JAX environment has none)

# ---------------------------------------------------------------- the tests

import pytest  # noqa: E402

from conftest import make_iam_folder, wait_for_epoch  # noqa: E402

NEEDS_JAX = pytest.mark.skipif(not JAX_PYTHON, reason="set ZOO_JAX_PYTHON to a Python with jax, keras==3.15.1 and tfp-nightly (.ci/run makes ../jaxenv)")


def start_worker(python, *args, backend="tensorflow"):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": REPO, "ZOO_CPU_DEVICES": "2"}
    return subprocess.Popen([python, __file__, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def report_of(proc, timeout=400) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    lines = [ln for ln in out.splitlines() if ln.startswith("REPORT ")]
    assert lines, out[-2000:]
    return json.loads(lines[-1][len("REPORT "):])


def assert_parity(report, devices, kinds=KINDS):
    print(json.dumps(report, indent=1))  # the figures, for the record (pytest -s shows them)
    assert report["devices"] == devices
    assert set(report["kinds"]) == set(kinds)
    for kind, diff in report["kinds"].items():
        for part in ("loss", "val_loss", "weights", "slots"):
            assert diff[part] <= TOLERANCE, f"{report['backend']} {kind}: {part} differs by {diff[part]:.2e} from one device's"


@pytest.fixture(scope="module")
def jax_two_devices(tmp_path_factory):
    """The JAX worker on two logical CPUs, started when first asked for, so that it runs beside the
    TensorFlow one: each is mostly one core's work (tracing, compiling). None without ZOO_JAX_PYTHON."""
    if not JAX_PYTHON:
        yield None
        return
    proc = start_worker(JAX_PYTHON, "parity", "--folder", str(tmp_path_factory.mktemp("jax-parity")), backend="jax")
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


# The one-process, two-device parity runs (about 2 minutes for both, side by side) are `slow`: the
# default suite keeps the two-process runs below, which cover the same train step on both backends.
@pytest.mark.slow
def test_tensorflow_mirrored_two_devices_match_one_device(tmp_path, jax_two_devices):
    iam = make_iam_folder(str(tmp_path / "iam"))
    proc = start_worker(sys.executable, "parity", "--folder", str(tmp_path), "--control", "--cli", iam, str(tmp_path / "cli"))
    report = report_of(proc)
    assert report["backend"] == "tensorflow"
    assert_parity(report, devices=2)
    # The control: Keras' own train step under MirroredStrategy sums the replicas' gradients of
    # losses that are already means: twice the SGD step, twice the reported loss. The check above catches it.
    control = report["kinds"]["text"]["keras_step"]
    assert control["weights"] > 1e-3 and control["loss"] > 0.5
    # The command line: trained on both devices, evaluated and saved on one.
    meta = report["cli"]
    assert meta["distribution"] == {"mode": "data-parallel", "engine": "tf.distribute.MirroredStrategy", "replicas": 2, "processes": 1}
    best = meta["history"][meta["best_epoch"] - 1]["val_loss"]
    assert meta["epochs"] == 2 and meta["evaluation"]["nll_nats_per_line"] == pytest.approx(best, rel=1e-5)


@pytest.mark.slow
@NEEDS_JAX
def test_jax_data_parallel_two_devices_match_one_device(jax_two_devices):
    report = report_of(jax_two_devices)
    assert report["backend"] == "jax"
    assert_parity(report, devices=2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_processes(args, env):
    """Two processes of one run, joined on free ports of 127.0.0.1: JAX's at a coordinator
    (--coordinator ...), TensorFlow's workers through TF_CONFIG (when env's KERAS_BACKEND says so)."""
    if env.get("KERAS_BACKEND") == "tensorflow":
        workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
        return [
            subprocess.Popen(
                args,
                cwd=REPO, env={**env, "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for i in range(2)
        ]
    coordinator = f"127.0.0.1:{free_port()}"
    return [
        subprocess.Popen(
            [*args, "--coordinator", coordinator, "--num-processes", "2", "--process-id", str(i)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]


def finish_all(procs, timeout):
    outs = [p.communicate(timeout=timeout) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return outs


def process_env(tmp_path, backend="jax"):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": REPO, "ZOO_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("ZOO_CPU_DEVICES", None)  # one device per process
    env.pop("TF_CONFIG", None)
    return env


# Two processes: JAX's joined at a coordinator, TensorFlow's workers through TF_CONFIG
# (MultiWorkerMirroredStrategy, with zoo/distribute.py's mends of keras-team/keras#20585).
BACKENDS = [pytest.param("tensorflow", id="tensorflow-workers"), pytest.param("jax", id="jax-processes", marks=NEEDS_JAX)]


def python_for(backend):
    return JAX_PYTHON if backend == "jax" else sys.executable


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_match_one_device(tmp_path, backend):
    """Lines and text streams split over two processes: the first steps are one device's."""
    procs = start_processes([python_for(backend), __file__, "processes", "--folder", str(tmp_path), "--kinds", "prediction", "text"], process_env(tmp_path, backend))
    (out, _), _ = finish_all(procs, timeout=400)
    lines = [ln for ln in out.splitlines() if ln.startswith("REPORT ")]
    assert lines, out[-2000:]
    report = json.loads(lines[-1][len("REPORT "):])
    assert report["processes"] == 2 and report["backend"] == backend
    assert_parity(report, devices=2, kinds=("prediction", "text"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_killed_process_stops_the_run_and_a_restart_resumes_it(tmp_path, backend):
    """`zoo train char-small --distribute data-parallel` on two processes: kill -9 one mid-run; the
    other stops at once, saying where to resume; both started again finish the run from the last
    checkpoint, every epoch once."""
    from zoo.training import trainer

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" ".join(["the quick brown fox jumps over the lazy dog"] * 80) + "\n")
    run = str(tmp_path / "run")
    command = [python_for(backend), "-m", "zoo", "train", "char-small", "--train-file", str(corpus), "--out", run, "--units", "6", "--layers", "1",
               "--batch-size", "4", "--seq-length", "8", "--steps-per-epoch", "1", "--patience", "0", "--distribute", "data-parallel"]
    env = process_env(tmp_path, backend)
    procs = start_processes([*command, "--epochs", "100000"], env)
    state_path = os.path.join(run, trainer.STATE)
    try:
        wait_for_epoch(state_path, 2, procs)
        procs[1].send_signal(signal.SIGKILL)
        start = time.time()
        _, err = procs[0].communicate(timeout=60)
        stopped_after = time.time() - start
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    print(f"process 0 stopped {stopped_after:.1f} s after process 1 was killed")
    assert procs[0].returncode != 0
    assert "training stopped: process 0 of 2 lost the others" in err, err[-2000:]
    assert "start all 2 processes again with the same command to resume from it" in err
    killed_at = trainer.load_state(run)["epoch"]  # the checkpoint's own epoch: state.json is a copy written after it
    assert keras_checkpoint_loads(run)  # never half-written
    target = killed_at + 2
    outs = finish_all(start_processes([*command, "--epochs", str(target)], env), timeout=300)
    assert all("resuming from" in err for _, err in outs)
    with open(state_path) as f:
        state = json.load(f)
    assert state["epoch"] == target and [h["epoch"] for h in state["history"]] == list(range(1, target + 1))
    assert json.loads(outs[0][0])["epochs"] == target and outs[1][0] == ""  # the chief alone reports and writes the preset
    engine = "keras.distribution.DataParallel" if backend == "jax" else "tf.distribute.MultiWorkerMirroredStrategy"
    with open(os.path.join(run, "preset", "metadata.json")) as f:
        assert json.load(f)["distribution"] == {"mode": "data-parallel", "engine": engine, "replicas": 2, "processes": 2}


def keras_checkpoint_loads(run) -> bool:
    """Whether the run's checkpoint is a whole zip holding the model and the run state (read, not loaded: it was written on JAX)."""
    import zipfile

    from zoo.training import trainer

    with zipfile.ZipFile(os.path.join(run, trainer.CHECKPOINT)) as z:
        return z.testzip() is None and {"config.json", trainer.STATE_IN_CHECKPOINT} <= set(z.namelist())


# ---------------------------------------------------------------- in this process: the pieces


class _Lines:
    """A stand-in stream of line batches: batch i holds i + 1 lines numbered from 10 * i."""

    batch_size = 4

    def __init__(self):
        self.epoch = 0

    def __len__(self):
        return 4

    def __getitem__(self, i):
        rows = np.arange(10 * i, 10 * i + i + 1)
        return (rows[:, None].astype(np.float32), rows), rows[:, None]


def test_sharded_batches_give_each_process_its_lines_and_repeat_a_batch_that_does_not_split():
    from zoo.distribute import ShardedBatches

    data = _Lines()
    one = [ShardedBatches(data, devices=4, process_index=p, num_processes=2) for p in range(2)]
    # A full batch of 4 lines: process 0 takes the first two, process 1 the last two.
    (x0, ids0), _ = one[0][3]
    (x1, ids1), y1 = one[1][3]
    assert ids0.tolist() == [30, 31] and ids1.tolist() == [32, 33] and y1[:, 0].tolist() == [32, 33]
    # 3 lines over 4 devices: each line 4 times (12 rows, 3 per device), 6 rows per process.
    rows = np.concatenate([one[p][2][0][1] for p in range(2)])
    assert rows.tolist() == [20] * 4 + [21] * 4 + [22] * 4
    # 2 lines: each twice. The mean over the rows is the mean over the lines, to the last bit.
    rows = np.concatenate([one[p][1][0][1] for p in range(2)])
    assert rows.tolist() == [10, 10, 11, 11]
    one[0].epoch = 5
    assert data.epoch == 5 and one[1].epoch == 5 and len(one[0]) == 4


def test_sharded_streams_must_split_and_the_batch_size_must_divide():
    from zoo.distribute import ShardedBatches

    with pytest.raises(ValueError, match="--batch-size 4 does not split evenly over 3 devices: give a multiple of 3"):
        ShardedBatches(_Lines(), devices=3, training=True)
    assert ShardedBatches(_Lines(), devices=3)[0][0][1].tolist() == [0, 0, 0]  # validation: any batch size
    streams = ShardedBatches(_Lines(), devices=2, carries_state=True)
    assert streams[1][0][1].tolist() == [10, 11]
    with pytest.raises(ValueError, match="a batch of 1 streams does not split over 2 devices"):
        streams[0]


def test_flags_need_distribute_and_tf_config_is_checked(monkeypatch):
    from zoo import distribute
    from zoo.cli import build_parser

    parse = build_parser().parse_args
    args = parse(["train", "--out", "x", "--coordinator", "127.0.0.1:1234", "--process-id", "0"])
    with pytest.raises(ValueError, match="--coordinator, --process-id need --distribute data-parallel"):
        distribute.setup_from_args(args)
    assert distribute.setup_from_args(parse(["train", "--out", "x"])) is None
    args = parse(["train", "--out", "x", "--distribute", "data-parallel", "--coordinator", "127.0.0.1:1234"])
    with pytest.raises(ValueError, match="need all three"):
        distribute.setup_from_args(args)
    # On TensorFlow (this process) workers join through TF_CONFIG, not the JAX flags.
    args = parse(["train", "--out", "x", "--distribute", "data-parallel", "--coordinator", "a:1", "--num-processes", "2", "--process-id", "0"])
    with pytest.raises(ValueError, match="TensorFlow workers join through TF_CONFIG"):
        distribute.setup_from_args(args)
    for bad in ("{not json", json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}),
                json.dumps({"cluster": {"worker": ["a:1"], "ps": ["b:1"]}, "task": {"type": "worker", "index": 0}})):
        monkeypatch.setenv("TF_CONFIG", bad)
        with pytest.raises(ValueError, match="TF_CONFIG must name the cluster's workers and this task"):
            distribute.setup_from_args(parse(["train", "--out", "x", "--distribute", "data-parallel"]))
    assert distribute.current() is None  # nothing was set up
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["c:1"], "worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}))
    assert distribute.tensorflow_task() == (2, 3)
