"""What differs between Keras backends, in one place: TFP's substrate, XLA, compiling.

Model code uses ``keras.ops`` only; the TensorFlow Probability distributions come
from the substrate that matches the active backend (``tensorflow_probability``
on TensorFlow, its JAX substrate from ``tfp-nightly`` on JAX).
"""

from __future__ import annotations

import functools
import os
import sys
import threading

import keras

CPU_DEVICES_VARIABLE = "ZOO_CPU_DEVICES"
_cpu_devices_configured = None  # the count set up by configure_cpu_devices, once per process


def configure_cpu_devices(count: int | None = None) -> int | None:
    """Split the CPU into ``count`` logical devices (default: ``$ZOO_CPU_DEVICES``) for either backend.

    Data-parallel training (zoo/distribute.py) then has several devices on a laptop or
    a CI machine: TensorFlow gets N logical CPUs (``tf.config.set_logical_device_configuration``),
    JAX N host devices (``jax_num_cpu_devices``, the option behind
    ``XLA_FLAGS=--xla_force_host_platform_device_count``). Both must be set before the
    backend starts its runtime, so this runs when this module is first imported (every
    model, layer and command imports it before computing anything). Returns the count,
    or None when nothing was asked."""
    global _cpu_devices_configured
    if count is None:
        text = os.environ.get(CPU_DEVICES_VARIABLE, "").strip()
        if not text:
            return None
        try:
            count = int(text)
        except ValueError:
            raise ValueError(f"{CPU_DEVICES_VARIABLE}={text!r}: give a whole number of logical CPU devices, such as 2") from None
    if count < 1:
        raise ValueError(f"{CPU_DEVICES_VARIABLE}={count}: give at least 1 logical CPU device")
    if _cpu_devices_configured == count:
        return count
    backend = name()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
        elif backend == "jax":
            import jax

            jax.config.update("jax_num_cpu_devices", count)
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
            if count > 1 and count >= cores:
                # Seen here (jaxlib 0.10.2, 2 cores): both devices' steps solved the mixture's triangular
                # systems (LAPACK strsm) at once, each on a thread of the one pool of 2, and each waited for
                # work queued behind the other: a 3x400 step of 16 lines x 256 points per device never ended.
                print(
                    f"warning: {CPU_DEVICES_VARIABLE}={count} on {cores} cores: JAX's CPU kernels can deadlock when every "
                    "core waits inside one device's step (seen with large batches); give fewer logical devices than cores, "
                    "or run one process per device (--coordinator)",
                    file=sys.stderr,
                )
    except RuntimeError as exc:  # the runtime had started already (TensorFlow or JAX computed something first)
        print(f"warning: {CPU_DEVICES_VARIABLE}={count} ignored: the {backend} runtime had already started ({exc})", file=sys.stderr)
        return None
    _cpu_devices_configured = count
    return count


def name() -> str:
    return keras.backend.backend()


@functools.lru_cache(maxsize=None)
def tfp():
    """The TensorFlow Probability module for the active Keras backend."""
    backend = name()
    if backend == "tensorflow":
        import tensorflow_probability as tfp_module

        return tfp_module
    if backend == "jax":
        try:
            from tensorflow_probability.substrates import jax as tfp_module
        except ImportError as exc:  # tensorflow-probability 0.25 does not import with current JAX
            raise ImportError("the JAX backend needs TFP's JAX substrate: pip install tfp-nightly") from exc
        return tfp_module
    raise RuntimeError(f"Keras backend {backend!r} is not supported; set KERAS_BACKEND=tensorflow or jax")


def tfd():
    return tfp().distributions


configure_cpu_devices()  # $ZOO_CPU_DEVICES, before either backend starts its runtime


def has_gpu() -> bool:
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    return False


def default_jit_compile() -> bool:
    """XLA on a GPU; on a CPU TensorFlow's plain graph mode, where XLA measured slower.

    JAX has no graph mode: without ``jax.jit`` Keras dispatches a train step op by op
    (a 1x6 text model took 3 s a step on this CPU, 0.05 s jitted), and under
    ``keras.distribution`` each op would be a program of its own over all the devices."""
    return name() == "jax" or has_gpu()


def compile_function(fn, jit_compile: bool | None = None):
    """Trace ``fn`` once into a graph: tf.function on TensorFlow, jax.jit on JAX."""
    if jit_compile is None:
        jit_compile = default_jit_compile()
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=jit_compile, reduce_retracing=True)
    if backend == "jax":
        import jax

        return jax.jit(fn)
    return fn


def scan(f, init, xs):
    """jax.lax.scan semantics, ``f(carry, x) -> (carry, y)``, over the leading axis of ``xs``.

    keras.ops.scan on TensorFlow neither lets y differ from the carry nor sets
    the loop's maximum_iterations, which XLA needs to compile its gradient;
    this one does both.
    """
    backend = name()
    if backend == "jax":
        import jax

        return jax.lax.scan(f, init, xs)
    if backend != "tensorflow":
        return keras.ops.scan(f, init, xs)
    import tensorflow as tf

    xs_flat = [tf.convert_to_tensor(x) for x in tf.nest.flatten(xs)]
    n = xs_flat[0].shape[0]
    if n is None:
        n = tf.shape(xs_flat[0])[0]
    x_tas = [tf.TensorArray(x.dtype, size=n, element_shape=x.shape[1:]).unstack(x) for x in xs_flat]

    def read(i):
        return tf.nest.pack_sequence_as(xs, [ta.read(i) for ta in x_tas])

    # The output structure comes from one trace of f on the first element;
    # those ops feed nothing and are pruned from the graph.
    _, y0 = f(init, tf.nest.pack_sequence_as(xs, [x[0] for x in xs_flat]))
    y_flat0 = tf.nest.flatten(y0)
    y_tas = [tf.TensorArray(y.dtype, size=n, element_shape=y.shape) for y in y_flat0]

    def body(i, carry, y_tas):
        carry, y = f(carry, read(i))
        y_tas = [ta.write(i, v) for ta, v in zip(y_tas, tf.nest.flatten(y))]
        return i + 1, carry, y_tas

    _, carry, y_tas = tf.while_loop(
        lambda i, *_: i < n,
        body,
        (tf.constant(0), init, y_tas),
        maximum_iterations=n,
    )
    ys = [ta.stack() for ta in y_tas]
    if isinstance(n, int):
        for y in ys:
            y.set_shape([n] + y.shape.as_list()[1:])
    return carry, tf.nest.pack_sequence_as(y0, ys)


def while_collect(body, carry, steps, keep_going):
    """Run ``body(t, carry) -> (carry, y)`` for t = 0, 1, ... while t < ``steps`` and ``keep_going(carry)``.

    Returns (final carry, the ys stacked over time, the number of steps run).
    The sampling loops (zoo.sampling.loops) run on this, compiled by the Keras
    engine and exported as ONNX's loop graph. On TensorFlow the ys are as
    long as the steps run (TensorArrays, which tf2onnx turns into ONNX Loop
    outputs); on JAX, whose loops need static shapes, they have ``steps``
    rows, those past the end left zero: callers cut them by the steps run.
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        # The structure of y from one trace at t = 0; those ops feed nothing and are pruned.
        _, y0 = body(tf.constant(0), carry)
        flat0 = tf.nest.flatten(y0)
        arrays = [tf.TensorArray(y.dtype, size=0, dynamic_size=True, element_shape=y.shape) for y in flat0]

        def tf_body(t, carry, arrays):
            carry, y = body(t, carry)
            return t + 1, carry, [a.write(t, v) for a, v in zip(arrays, tf.nest.flatten(y))]

        t, carry, arrays = tf.while_loop(lambda t, carry, _: (t < steps) & keep_going(carry), tf_body, (tf.constant(0), carry, arrays))
        return carry, tf.nest.pack_sequence_as(y0, [a.stack() for a in arrays]), t
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        shapes = jax.eval_shape(lambda c: body(jnp.int32(0), c)[1], carry)
        buffers = jax.tree.map(lambda s: jnp.zeros((steps,) + tuple(s.shape), s.dtype), shapes)

        def jax_body(v):
            t, carry, buffers = v
            carry, y = body(t, carry)
            return t + 1, carry, jax.tree.map(lambda b, y: b.at[t].set(y), buffers, y)

        t, carry, buffers = jax.lax.while_loop(lambda v: (v[0] < steps) & keep_going(v[1]), jax_body, (jnp.int32(0), carry, buffers))
        return carry, buffers, t
    raise RuntimeError(f"Keras backend {backend!r} is not supported; set KERAS_BACKEND=tensorflow or jax")


def fit_data(data, repeat: bool = False):
    """What to hand to ``model.fit`` for a PyDataset whose batch shapes vary.

    On TensorFlow, Keras fixes the dataset's signature from its first two
    batches, so a later, longer batch fails; this wraps the PyDataset in a
    tf.data pipeline whose time axis is unknown. With ``repeat`` the stream
    goes on across epochs, calling ``on_epoch_end`` after each pass (the
    caller then passes ``steps_per_epoch``). Other backends take it as it is.
    """
    if name() != "tensorflow" or not isinstance(data, keras.utils.PyDataset):
        return data
    import tensorflow as tf

    # Batch and time (or text) axes vary; a feature axis (the last of 3) does not.
    spec = tf.nest.map_structure(
        lambda a: tf.TensorSpec((None,) * (a.ndim - 1) + ((a.shape[-1],) if a.ndim >= 3 else (None,)), tf.as_dtype(a.dtype)),
        data[0],
    )

    # tf.data may start the generator more than once and drop an instance that already read
    # ahead (MirroredStrategy's distributed dataset does: a first iterator reads four batches and
    # is discarded). So each instance keeps its own position, starting where the stream stood,
    # and reads batch i of its epoch under a lock, instead of advancing the shared stream.
    start = getattr(data, "epoch", None)
    lock = threading.Lock()

    def batches():
        epoch = start
        while True:
            for i in range(len(data)):
                if epoch is None:
                    yield data[i]
                    continue
                with lock:
                    data.epoch = epoch
                    batch = data[i]
                yield batch
            if not repeat:
                return
            if epoch is None:
                data.on_epoch_end()
            else:
                epoch += 1

    dataset = tf.data.Dataset.from_generator(batches, output_signature=spec).prefetch(2)
    # Several TensorFlow workers each read every global batch and keep their own rows of it
    # (zoo/distribute.py); a generator cannot be sharded by files, which AUTO would try first.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
