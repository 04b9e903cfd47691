"""Data-parallel training on the engines Keras already has: one model, replicated on every device.

    python -m zoo train ... --distribute data-parallel                 # every local device
    python -m zoo train ... --distribute data-parallel \\
        --coordinator HOST:PORT --num-processes N --process-id I       # JAX: N processes (hosts)
    TF_CONFIG='{"cluster": {"worker": ["h0:2222", "h1:2222"]}, "task": {"type": "worker", "index": 0}}' \\
        python -m zoo train ... --distribute data-parallel             # TensorFlow: N workers
    ZOO_CPU_DEVICES=2 python -m zoo train ... --distribute data-parallel   # two logical CPUs

``--batch-size`` stays the global batch: every step trains on the same lines as one
device would, split by lines over the devices, and takes the same step.

**JAX** (`keras.distribution.DataParallel`, several processes joined by
`keras.distribution.initialize`): Keras' own train step is traced over the *global*
batch and XLA shards it (GSPMD). The loss is the mean over all B lines, eq. 28's clip
scales the upstream derivative back by that global B (zoo/layers/gradient_clip.py), a
clipnorm sees the whole gradient: one device's maths by construction; only the order of
the floating-point sums changes. Each process feeds its own rows of every global batch.

**TensorFlow** (`tf.distribute.MirroredStrategy` over the local GPUs, or the logical CPUs
of ``ZOO_CPU_DEVICES``): every replica runs the model on its own rows, and Keras' default
train step would not keep one device's maths with these models. The zoo's models average
their own loss (nats per line or per symbol), so Keras' sum of the replicas' gradients
takes N-times larger steps; and Keras clips each replica's part of the gradient
(``clipnorm``) before summing them, which is not the clip of the summed gradient. The
train step installed here (`prepare`) instead

1. computes each replica's loss as one device computes it for those lines (so the clip of
   eq. 28, which scales back by the lines of the batch it sees, gets each line's own
   derivative, as on one device);
2. averages the replicas' gradients weighted by their lines: sum_r (b_r / B) grad L_r is
   the gradient of (1 / B) sum_i loss_i, one device's gradient for the whole batch;
3. hands that averaged gradient, the same on every replica, to the optimizer, which clips
   it (clipnorm) and applies it (Graves' RMSProp, eq. 38-45) as one device does; the
   optimizer's own summing across replicas is turned off for it, the sum being done.

Several TensorFlow workers join through ``TF_CONFIG`` (`MultiWorkerMirroredStrategy`, the
same replica step). Keras 3's `model.fit` fails under it as it stands (keras-team/keras#20585):
before the first step it averages a batch across the workers to build the model, and after
every step it reduces each logged value along an axis 0 that a scalar lacks. `prepare`
mends both on the model instance: the model is built from this worker's own part of the
batch, and the steps log their (already synchronised) values as vectors of one. Every
worker reads the whole global batch, and tf.data's DATA sharding gives each its rows (the
first worker the first rows, as `replica_rows` expects); one replica per worker on CPUs.

Only the chief (process 0) writes checkpoints, logs and presets (zoo/training/trainer.py
asks `is_chief`); every process resumes from the same run folder, so it must be on storage
that all of them see. A process that loses the others (one was killed, a machine failed)
stops at once with a message (`abort`); starting all of them again resumes from the last
complete checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys

import keras
import numpy as np

from zoo import backend

COORDINATOR_ON_TENSORFLOW = (
    "--coordinator, --num-processes and --process-id join JAX processes (KERAS_BACKEND=jax); TensorFlow "
    "workers join through TF_CONFIG: set it to '{\"cluster\": {\"worker\": [\"HOST0:PORT\", \"HOST1:PORT\"]}, "
    "\"task\": {\"type\": \"worker\", \"index\": I}}' on worker I and give only --distribute data-parallel"
)


@dataclasses.dataclass
class Plan:
    """Where this process trains: ``devices`` replicas in all, ``num_processes`` processes."""

    backend: str
    devices: int
    process_index: int = 0
    num_processes: int = 1
    strategy: object = None  # TensorFlow's MirroredStrategy

    @property
    def is_chief(self) -> bool:
        return self.process_index == 0

    @property
    def tensorflow_workers(self) -> bool:
        """Several TensorFlow processes (MultiWorkerMirroredStrategy)."""
        return self.backend == "tensorflow" and self.num_processes > 1

    def describe(self) -> dict:
        """What a preset's metadata records about the run's devices."""
        if self.backend == "jax":
            engine = "keras.distribution.DataParallel"
        else:
            engine = "tf.distribute.MultiWorkerMirroredStrategy" if self.tensorflow_workers else "tf.distribute.MirroredStrategy"
        return {"mode": "data-parallel", "engine": engine, "replicas": self.devices, "processes": self.num_processes}


_current: Plan | None = None


def current() -> Plan | None:
    """The plan `setup` made in this process, or None when it trains on one device."""
    return _current


def is_chief() -> bool:
    """Whether this process writes the run's files: always, unless it is a non-zero process of several."""
    return _current is None or _current.is_chief


def setup_from_args(args) -> Plan | None:
    """`setup` from `zoo train`'s --distribute, --coordinator, --num-processes and --process-id."""
    several = {"--coordinator": args.coordinator, "--num-processes": args.num_processes, "--process-id": args.process_id}
    if args.distribute is None:
        given = [flag for flag, value in several.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} need --distribute data-parallel")
        return None
    return setup(args.coordinator, args.num_processes, args.process_id)


def setup(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None) -> Plan:
    """Join the other processes (JAX, when ``coordinator`` is given) and replicate what is built from
    now on over every device. Call it before the backend computes anything (JAX's processes must
    join first) and before the model is built or loaded. Idempotent."""
    global _current
    if _current is not None:
        return _current
    several = (coordinator, num_processes, process_id)
    if any(v is not None for v in several) and any(v is None for v in several):
        raise ValueError("several processes need all three of --coordinator HOST:PORT, --num-processes N and --process-id I")
    if num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"--process-id {process_id} must be between 0 and --num-processes {num_processes} - 1")
    name = backend.name()
    if name == "jax":
        _current = _setup_jax(coordinator, num_processes, process_id)
    elif name == "tensorflow":
        if coordinator is not None:
            raise ValueError(COORDINATOR_ON_TENSORFLOW)
        _current = _setup_tensorflow()
    else:
        raise RuntimeError(f"data-parallel training needs KERAS_BACKEND=jax or tensorflow, not {name!r}")
    return _current


def _setup_jax(coordinator, num_processes, process_id) -> Plan:
    import jax

    if coordinator is not None and num_processes > 1 and not jax.distributed.is_initialized():
        with _native_stdout_to_stderr():  # Gloo prints its connections on stdout, which carries the command's JSON
            keras.distribution.initialize(coordinator, num_processes, process_id)
    devices = keras.distribution.list_devices()  # every process's devices: GPUs or TPUs if any, else CPUs
    # Each process feeds its own rows of every global batch (`shard`): nothing for Keras to shard.
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False))
    return Plan("jax", len(devices), jax.process_index(), jax.process_count())


@contextlib.contextmanager
def _native_stdout_to_stderr():
    """Point file descriptor 1 at stderr for native code's prints within this block."""
    try:
        target = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no file behind sys.stderr (a notebook): leave stdout alone
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(target, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


_strategies = {}  # one MirroredStrategy per device list and process: a second one's collectives clash with the first's


def tensorflow_task() -> tuple[int, int] | None:
    """(this worker's index, the number of workers) from ``TF_CONFIG``; None when it is unset.
    A "chief" task, if the cluster names one, is index 0 and the workers follow it."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        chiefs, workers = list(cluster.get("chief", [])), list(cluster.get("worker", []))
        kind, index = task["type"], int(task["index"])
        position = {"chief": 0, "worker": len(chiefs) + index}[kind]
        if not workers + chiefs or index >= len(cluster[kind]) or len(chiefs) > 1 or set(cluster) - {"chief", "worker"}:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            "TF_CONFIG must name the cluster's workers and this task, e.g. "
            '\'{"cluster": {"worker": ["host0:2222", "host1:2222"]}, "task": {"type": "worker", "index": 0}}\' '
            f"(at most one \"chief\"; no parameter servers); got {text[:200]!r}"
        ) from None
    return position, len(chiefs) + len(workers)


def _setup_tensorflow() -> Plan:
    import tensorflow as tf

    task = tensorflow_task()
    if task is not None and task[1] > 1:
        # One replica per worker on CPUs, every local GPU otherwise. It must be made before
        # TensorFlow computes anything: it configures the runtime's collectives.
        if "workers" not in _strategies:
            _strategies["workers"] = tf.distribute.MultiWorkerMirroredStrategy()
        strategy = _strategies["workers"]
        tf.distribute.experimental_set_strategy(strategy)
        return Plan("tensorflow", strategy.num_replicas_in_sync, task[0], task[1], strategy=strategy)
    devices = tuple(d.name for d in tf.config.list_logical_devices("GPU")) or tuple(d.name for d in tf.config.list_logical_devices("CPU"))
    if devices not in _strategies:
        _strategies[devices] = tf.distribute.MirroredStrategy(list(devices))
    strategy = _strategies[devices]
    # The process-wide strategy: what is built, loaded and compiled from now on is mirrored,
    # as keras.distribution.set_distribution does on JAX.
    tf.distribute.experimental_set_strategy(strategy)
    return Plan("tensorflow", strategy.num_replicas_in_sync, strategy=strategy)


def reset() -> None:
    """Back to one device for what is built from now on (models already built stay replicated)."""
    global _current
    if _current is None:
        return
    if _current.backend == "jax":
        keras.distribution.set_distribution(None)
    else:
        import tensorflow as tf

        tf.distribute.experimental_set_strategy(None)
    _current = None


# ---------------------------------------------------------------- batches


class ShardedBatches(keras.utils.PyDataset):
    """This process's rows of every global batch of ``data``, in numbers that split evenly over the devices.

    The zoo's batches already hold lines of similar length (LineBatches sorts a pass by
    length before cutting it into batches; text batches are equal-length streams), so
    splitting a batch by lines gives every replica work of similar length, padded to the
    same T (one traced program for all of them). Process p of P takes the p-th of P equal
    runs of rows; JAX then gives each of its devices an equal run of those (and
    TensorFlow's MirroredStrategy splits the batch the same way).

    A batch whose lines do not split evenly (the last, shorter batch of a pass) has every
    line repeated k times, k the smallest that makes them split: the mean loss of the batch,
    its gradient and each line's clipped derivative are exactly those of the lines once,
    at up to k times the work for that batch (its weight in the epoch's mean loss, a
    report, grows by k). Training batches (``training``) must split evenly when full, or
    every one of them would cost k times; rows that carry state from batch to batch (text
    streams, ``carries_state``) can never be repeated.
    """

    def __init__(self, data, devices: int, process_index: int = 0, num_processes: int = 1, training: bool = False, carries_state: bool = False):
        super().__init__()
        self.data = data
        self.devices = devices
        self.process_index = process_index
        self.num_processes = num_processes
        self.carries_state = carries_state
        size = getattr(data, "batch_size", None)
        if (training or carries_state) and size is not None and size % devices:
            raise ValueError(
                f"--batch-size {size} does not split evenly over {devices} devices: give a multiple of {devices} "
                "(the batch size is the global batch, split by lines over the devices)"
            )

    # The wrapped stream's position and attributes (epoch, steps_per_epoch, lines, ...) are its own.
    @property
    def epoch(self):
        return self.data.epoch

    @epoch.setter
    def epoch(self, value):
        self.data.epoch = value

    def __getattr__(self, name):
        if name == "data":  # not set yet (during __init__)
            raise AttributeError(name)
        return getattr(self.data, name)

    def __len__(self):
        return len(self.data)

    def on_epoch_end(self):
        self.data.on_epoch_end()

    def __getitem__(self, i):
        batch = self.data[i]
        rows = len(keras.tree.flatten(batch)[0])
        repeat = self.devices // math.gcd(rows, self.devices)
        if repeat > 1 and self.carries_state:
            raise ValueError(f"a batch of {rows} streams does not split over {self.devices} devices")
        per_process = rows * repeat // self.num_processes
        start = self.process_index * per_process

        def mine(a):
            a = np.repeat(a, repeat, axis=0) if repeat > 1 else a
            return a[start : start + per_process]

        return keras.tree.map_structure(mine, batch)


def shard(data, training: bool = False, carries_state: bool = False):
    """``data`` for this process under the current plan (unchanged on one device); see `ShardedBatches`."""
    plan = current()
    if plan is None:
        return data
    if plan.backend == "tensorflow":  # every worker reads the global batch; tf.data's DATA sharding gives each its rows
        return ShardedBatches(data, plan.devices, training=training, carries_state=carries_state)
    return ShardedBatches(data, plan.devices, plan.process_index, plan.num_processes, training=training, carries_state=carries_state)


# ---------------------------------------------------------------- the model


def prepare(model):
    """Ready a built, compiled model for training under the current plan (TensorFlow: the train and
    test steps described at the top of this module). Returns the model."""
    plan = current()
    if plan is None or plan.backend != "tensorflow":
        return model
    import types

    model.train_step = types.MethodType(_tensorflow_train_step, model)
    model.test_step = types.MethodType(_tensorflow_test_step, model)
    if plan.tensorflow_workers:  # keras-team/keras#20585, see the top of this module
        model.train_step = types.MethodType(_logs_as_vectors(_tensorflow_train_step), model)
        model.test_step = types.MethodType(_logs_as_vectors(_tensorflow_test_step), model)
        model._maybe_symbolic_build = types.MethodType(_build_from_local_batch, model)
    # Our train step sums the replicas' gradients itself (weighted) before the optimizer clips
    # them; the optimizer's own sum (TFOptimizer._all_reduce_sum_gradients) would add N copies.
    model.optimizer._all_reduce_sum_gradients = lambda grads_and_vars: list(grads_and_vars)
    model.train_function = model.test_function = None  # traced again with these steps
    return model


def _rows(x):
    import tensorflow as tf

    return tf.cast(tf.shape(keras.tree.flatten(x)[0])[0], "float32")


def _tensorflow_train_step(self, data):
    """One replica's step under MirroredStrategy, keeping one device's maths (see the module's docstring)."""
    import tensorflow as tf

    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    replica = tf.distribute.get_replica_context()
    with tf.GradientTape() as tape:
        y_pred = self(x, training=True)
        # As one device computes it for these lines: a mean over them (not Keras' 1 / N-scaled share).
        loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        scaled = self.optimizer.scale_loss(loss)  # mixed precision's loss scale; the identity otherwise
    # Dense: a looked-up weight's gradient (the text models' one-hot rows) comes as IndexedSlices
    # with as many rows as the replica's symbols, which differ between replicas.
    gradients = [tf.convert_to_tensor(g) for g in tape.gradient(scaled, self.trainable_weights)]
    rows = _rows(x)
    share = rows / replica.all_reduce(tf.distribute.ReduceOp.SUM, rows)  # b_r / B
    gradients = replica.all_reduce(tf.distribute.ReduceOp.SUM, [g * share for g in gradients])
    self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
    # The loss tracker sums over replicas, weighted by lines: the epoch's mean over all lines.
    self._loss_tracker.update_state(loss, sample_weight=rows)
    return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


def _logs_as_vectors(step):
    """``step`` logging vectors of one: Keras reduces each logged value across workers with
    ``strategy.reduce("MEAN", v, axis=0)``, which a scalar lacks. The values are the metrics'
    synchronised results, the same on every replica, so the mean is the value."""
    import tensorflow as tf

    def vector_step(self, data):
        return {name: tf.reshape(value, [1]) for name, value in step(self, data).items()}

    return vector_step


def _build_from_local_batch(self, iterator=None, data_batch=None):
    """Keras' `_maybe_symbolic_build` under several workers: build from this worker's part of the
    first batch (Keras averages the distributed batch across workers first, and fails)."""
    import tensorflow as tf

    if iterator is not None:
        for _, _, it in iterator:
            data_batch = tf.nest.map_structure(lambda v: self.distribute_strategy.experimental_local_results(v)[0], next(it))
            break
    with self.distribute_strategy.scope():
        self._symbolic_build(data_batch=data_batch)


def _tensorflow_test_step(self, data):
    """One replica's validation step: its lines' mean loss, weighted by lines across replicas."""
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    y_pred = self(x, training=False)
    loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)
    self._loss_tracker.update_state(loss, sample_weight=_rows(x))
    return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


def replica_rows(full, rows):
    """This replica's ``rows`` rows of a tensor that holds one row per stream of the global batch.

    Under TensorFlow's MirroredStrategy replica r trains on rows r*b .. (r+1)*b - 1 of each
    batch; elsewhere (one device, or JAX, whose step sees the global batch) all rows."""
    replica = _tensorflow_replica()
    if replica is None:
        return full
    start = replica.replica_id_in_sync_group * rows
    return full[start : start + rows]


def gather_rows(local):
    """The inverse of `replica_rows`: every replica's rows, in order, on every replica."""
    replica = _tensorflow_replica()
    if replica is None:
        return local
    return replica.all_gather(local, axis=0)


def _tensorflow_replica():
    """TensorFlow's replica context while several replicas run a step, else None."""
    if backend.name() != "tensorflow":
        return None
    import tensorflow as tf

    replica = tf.distribute.get_replica_context()
    if replica is None or replica.num_replicas_in_sync == 1:
        return None
    return replica


# ---------------------------------------------------------------- several processes


@contextlib.contextmanager
def on_this_process():
    """Within this block, what Keras builds stays on this process's devices.

    With several JAX processes, placing a value on the replicated layout is itself a
    collective (JAX checks that every process passes the same value), so work that the
    chief does alone must not place any: writing a checkpoint builds scratch variables
    (Keras' saving walks a fresh optimizer). Reading the replicated weights needs no other
    process. Elsewhere this does nothing."""
    plan = current()
    if plan is None or plan.num_processes == 1:
        yield
        return
    distribution = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(distribution)



def writes_together() -> bool:
    """Whether the other processes must write the model too when the chief does, into a scratch
    folder thrown away: TensorFlow workers, since Keras' saving creates variables, and creating
    a mirrored variable is a collective (a broadcast from the chief) that every worker joins.
    (TensorFlow's own advice for MultiWorkerMirroredStrategy is the same.)"""
    plan = current()
    return plan is not None and plan.tensorflow_workers


def agree(flag: bool) -> bool:
    """The chief's ``flag`` in every process: decisions taken on a clock (the time budget) must be
    the same everywhere, or one process would wait forever for the others' next step."""
    plan = current()
    if plan is None or plan.num_processes == 1:
        return flag
    if plan.backend == "tensorflow":
        return bool(_tensorflow_broadcast(plan.strategy)(bool(flag)))
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.int32(bool(flag))))


_broadcasts = {}


def _tensorflow_broadcast(strategy):
    """A function giving every worker the chief's (replica 0's) integer: an all-reduce sum of it and zeros."""
    if strategy not in _broadcasts:
        import tensorflow as tf

        def replica(value):
            context = tf.distribute.get_replica_context()
            return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.where(context.replica_id_in_sync_group == 0, value, 0))

        @tf.function
        def broadcast(value):
            return strategy.experimental_local_results(strategy.run(replica, args=(value,)))[0]

        _broadcasts[strategy] = lambda flag: int(broadcast(tf.constant(int(flag), tf.int32)))
    return _broadcasts[strategy]


def abort(message: str, code: int = 1) -> None:
    """Stop this process now with ``message``, as a process of several must when it loses the others.

    ``os._exit`` skips the interpreter's exit, where JAX's distributed client waits at a
    shutdown barrier for processes that will never come (and then aborts with a core dump)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(code)


def finish(model):
    """After training: the model for what follows on this process alone (the best weights,
    evaluation, the preset), or None on a non-chief process, which has nothing left to do.

    With several processes every computation on the replicated weights, and every write
    to them, needs all the processes, so the chief takes a copy of the weights on its own
    devices; on JAX every process then leaves the distributed runtime (a barrier: none waits
    at exit for a chief still evaluating). On one process the model itself goes on (its
    replicated weights serve one device's computations too). Called again, it returns ``model``."""
    plan = current()
    if plan is None:
        return model
    if plan.num_processes == 1:
        reset()
        return model
    weights = model.get_weights() if plan.is_chief else None  # replicated: readable in each process
    reset()
    local = None
    if plan.is_chief:
        local = type(model).from_config(model.get_config())
        local.build()
        local.set_weights(weights)
        # The optimizer's configuration (its learning rate goes into the preset's metadata), no state.
        local.compile(optimizer=keras.optimizers.deserialize(keras.optimizers.serialize(model.optimizer)))
    if plan.backend == "jax":
        import jax

        jax.distributed.shutdown()
    return local
