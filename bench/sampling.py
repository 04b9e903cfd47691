"""Sampling speed of the handwriting models, every engine measured side by side in one run.

For each model (by default the shipped presets: iam-synthesis, 3 x 400, the paper's
size; iam-synthesis-small and iam-prediction, 3 x 128; ``synthesis-3x400`` names an
untrained 3 x 400 with random weights; or any exported preset folder) and
batch 1 and 32: milliseconds per sampling step and pen points per second for

- ``keras_eager``: a Python loop calling the model's one step
  (``model.sample_step``) eagerly, fewer steps, once (it is slow);
- ``tf_function``: the Keras engine (``zoo.sampling.engines.KerasEngine``),
  the whole sampling loop (``zoo.sampling.loops.strokes_loop``) compiled by
  ``zoo.backend.compile_function`` (tf.function on TensorFlow, without XLA);
  the name is kept from before the loop existed, for the JSON keys, and
  ``--engines keras_loop`` selects it too;
- ``xla``: the same loop function compiled with ``jit_compile=True``
  (``zoo.backend.compile_function``); with TensorFlow 2.21 it runs the loop
  but returns no points (XLA drops the dynamic-size TensorArray of
  ``zoo.backend.while_collect``), which is reported in ``notes``;
- ``saved_model``: the SavedModel's ``sample_loop`` signature (the exported loop);
- ``ort_step``: onnxruntime's step graph (``model.onnx``) driven from Python
  (``export.runtime`` engine's ``.step`` in a loop);
- ``ort_loop``: onnxruntime's whole-loop graph (``loop.onnx``, the engine's ``.strokes_loop``);
- ``ort_loop_int8``: its int8 copy (from ``zoo export --int8``; skipped for a
  folder exported without it);

the ratios are to tf_function. The whole loops stop a synthesis line by Graves'
rule, so they are timed per step they ran (``<engine>_b<B>_steps`` in the JSON);
the step-driven engines run every step. Also the first-sample latency of the
onnxruntime sampler including loading its sessions.

The text models (a 1 x 256 character model with random weights over a
50-symbol vocabulary, and every shipped text preset) are measured the same
way in characters per second: tf_function (the Keras engine's compiled
``text_loop``, which ``sample_text`` runs in chunks), onnxruntime driving the
step graph, and onnxruntime's whole-loop graph, float and int8.

A preset is timed from its ONNX export (and SavedModel); one whose export is
missing or of an older format is skipped with the command that makes it.
``--models`` and ``--text-models`` also take exported folders (their keys
use the folder's name).

    python bench/sampling.py                 # table
    python bench/sampling.py --json          # one JSON object (ort_loop_b1_ms_per_step, ort_loop_int8_b1_ms_per_step, text_chars_per_s, ...)
    python bench/sampling.py --models /tmp/syn-export --text-models none --steps 20 --repeats 1

Timings depend on the machine and on what else runs on it; the minimum over
--repeats runs is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from zoo.cli import _silence_native_stderr  # noqa: E402

ENGINES = ["keras_eager", "tf_function", "xla", "saved_model", "ort_step", "ort_loop", "ort_loop_int8"]
ALIASES = {"keras_loop": "tf_function"}
TEXT = "the quick brown fox jumps over the lazy dog and runs far away"


def _timed(fn, repeats):
    """min over repeats of (seconds, steps) of fn() -> steps."""
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        steps = fn()
        dt = time.perf_counter() - t0
        if best is None or dt / steps < best[0] / best[1]:
            best = (dt, steps)
    return best


def _no_int8(folder, engine):
    print(f"{folder}: no int8 graphs, {engine} skipped; make them with python -m zoo export --model {folder} --format all --int8 --out {folder}", file=sys.stderr)


def strokes_function(model, jit_compile):
    """zoo.sampling.loops.strokes_loop over ``model``, compiled as the Keras engine compiles it
    (zoo.backend.compile_function), with or without XLA: the flat state in, (points, ends) out."""
    from zoo import backend
    from zoo.sampling import loops

    def strokes(x, state, noise, bias, caps, text=None):
        points, _, ends, _ = loops.strokes_loop(model, x, model.unstack_state(state), noise, bias, caps, text)
        return points, ends

    return backend.compile_function(strokes, jit_compile=jit_compile)


def bench_model(model, folder, batch, steps, repeats, engines, threads, notes=None):
    """{engine: (ms per step, points per second, steps run)} for sampling up to ``steps`` points of ``batch`` lines."""
    import numpy as np
    from keras import ops

    from export import runtime
    from zoo.data.offsets import start_input
    from zoo.layers.window import past_the_end
    from zoo.sampling import loops
    from zoo.sampling.driver import encode_lines, sampling_noise
    from zoo.sampling.engines import KerasEngine

    synthesis = hasattr(model, "alphabet")
    noise = sampling_noise(steps, batch, 0)
    x0 = start_input(batch, model.offset_mean, model.offset_std)
    caps = np.full(batch, steps, np.int32)
    bias = np.float32(0.0)
    padded = encode_lines(model.alphabet, [TEXT] * batch)[1] if synthesis else None
    feeds_text = {"text": padded} if synthesis else {}
    keras_engine = KerasEngine(model) if "tf_function" in engines else None
    zero = {k: np.zeros([batch if d == "batch" else d for d in shape], np.float32) for k, shape in model.state_shapes().items()}  # the flat layout
    results, warned = {}, set()
    notes = notes if notes is not None else []

    def eager_run(n_steps):
        def run():
            weights = model.step_weights()
            x, state = ops.convert_to_tensor(x0), model.unstack_state({k: ops.convert_to_tensor(v) for k, v in zero.items()})
            context, end_masks = loops.text_context(model, ops.convert_to_tensor(padded)) if synthesis else (None, None)
            for t in range(n_steps):
                x, _, state, window = model.sample_step(weights, x, state, ops.convert_to_tensor(noise[t]), bias, context)
                if window is not None:
                    past_the_end(window["phi"], end_masks)  # the loop's stopping test, as it runs each step
            ops.convert_to_numpy(x)
            return n_steps

        return run

    def steps_run(engine, points, ends):
        """The steps a whole loop ran (the last line's end), checked against the rows it returned."""
        n, rows = int(np.max(ops.convert_to_numpy(ends))), int(ops.convert_to_numpy(points).shape[0])
        if rows < n and engine not in warned:  # (on JAX the loop returns every step's row, zero past the end)
            warned.add(engine)
            note = f"{label(folder)} batch {batch}: {engine} ran {n} steps but returned {rows} rows of points; timed per step run"
            if engine == "xla":
                note += " (XLA drops the dynamic-size TensorArray that zoo.backend.while_collect collects the points in)"
            print(note, file=sys.stderr)
            notes.append(note)
        return n

    def loop_run(engine, fn):
        def run():
            out = fn(x0, zero, noise, bias, caps, padded) if synthesis else fn(x0, zero, noise, bias, caps)
            return steps_run(engine, out[0], out[-1])

        return run

    for engine in engines:
        if engine.endswith("_int8") and not runtime.has_onnx(folder, "int8"):
            _no_int8(folder, engine)
            continue
        if engine == "keras_eager":
            dt, n = _timed(eager_run(max(10, steps // 10)), 1)  # eager is slow: fewer steps, once
        elif engine in ("tf_function", "xla"):
            if engine == "tf_function":
                fn = lambda *a: keras_engine.strokes_loop(*a)  # noqa: E731  (the engine the driver runs)
            else:
                fn = strokes_function(model, jit_compile=True)
            run = loop_run(engine, fn)
            try:
                run()  # trace / compile
            except Exception as exc:  # XLA may refuse a loop construct on some version: report it, time the rest
                print(f"{folder}: {engine} failed, skipped: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}", file=sys.stderr)
                continue
            dt, n = _timed(run, repeats)
        elif engine == "saved_model":
            import tensorflow as tf

            path = os.path.join(folder, "saved_model")
            if not os.path.isdir(path):
                print(f"{folder}: no saved_model/, saved_model skipped; make it with python -m zoo export --model {folder} --format all --out {folder}", file=sys.stderr)
                continue
            sig = tf.saved_model.load(path).signatures["sample_loop"]
            args = {"x": x0, **zero, **feeds_text, "noise": noise, "bias": bias, "caps": caps}
            args = {k: tf.constant(v) for k, v in args.items()}
            sig(**args)

            def run():
                out = sig(**args)
                return steps_run(engine, out["points"], out["ends"])

            dt, n = _timed(run, repeats)
        elif engine.startswith("ort_"):
            sampler = runtime.load(folder, threads=threads, precision="int8" if engine.endswith("_int8") else "float32")
            if engine.startswith("ort_loop"):

                def run():
                    points, _, ends = sampler.strokes_loop(x0, zero, noise, bias, caps, padded)
                    return steps_run(engine, points, ends)

            else:

                def run():
                    x, state = x0, zero
                    for t in range(steps):
                        out = sampler.step(x, state, noise[t], bias, **feeds_text)
                        x, state = out["point"], {k: out[f"{k}_next"] for k in zero}
                    return steps

            run()
            dt, n = _timed(run, repeats)
        else:
            raise ValueError(f"unknown engine {engine!r}; engines: {', '.join(ENGINES)}")
        results[engine] = (1e3 * dt / n, batch * n / dt, n)
    return results


def first_sample_latency(folder, threads, synthesis):
    """Seconds from loading the onnxruntime sessions to the first finished sample (a 20-character line or 300 points)."""
    from export import runtime

    t0 = time.perf_counter()
    sampler = runtime.load(folder, threads=threads)
    if synthesis:
        sampler.write([TEXT[:20]], seed=0)
    else:
        sampler.sample(steps=300, count=1, seed=0)
    return time.perf_counter() - t0, sampler.load_seconds


def paper_size_synthesis(alphabet, folder):
    """A 3 x 400 synthesis network (M = 20, K = 10) with random weights, exported to ``folder``."""
    import keras

    from export import export_model
    from zoo.models import HandwritingSynthesizer
    from zoo.presets import save_preset

    keras.utils.set_random_seed(0)
    model = HandwritingSynthesizer(alphabet, units=400, num_layers=3, num_mixtures=20, window_components=10, offset_mean=(8.2, 0.1), offset_std=(41.6, 36.9))
    model.build()
    save_preset(model, folder, {"model": "HandwritingSynthesizer", "note": "random weights, for timing"})
    export_model(folder, folder, int8=True)
    from zoo.presets import from_preset

    return from_preset(folder)


TEXT_ENGINES = ["tf_function", "ort_step", "ort_loop", "ort_loop_int8"]
TEXT_SYMBOLS = "etaoinshrdlcumwfgypbvkjxqzETAOINSHRDLCUM .,;'\n-!?"  # 49 symbols + unknown = 50


def bench_text_model(model, folder, batch, steps, repeats, engines, threads):
    """{engine: (ms per symbol, characters per second, symbols)} for drawing ``steps`` symbols for each of ``batch`` lines."""
    import numpy as np

    from export import runtime
    from zoo.sampling.driver import text_prime_ids, text_uniforms
    from zoo.sampling.engines import KerasEngine

    uniforms = text_uniforms(steps, batch, 0)
    prime = np.repeat(text_prime_ids(model.vocabulary, "")[None, -1:], batch, 0)  # (B, 1): no symbol read before the first draw
    temperature = np.float32(1.0)
    results = {}
    for engine in engines:
        if engine.endswith("_int8") and not runtime.has_onnx(folder, "int8"):
            _no_int8(folder, engine)
            continue
        if engine == "tf_function":
            keras_engine = KerasEngine(model)

            def run():
                return len(keras_engine.text_loop(prime, None, uniforms, temperature)[0])

        elif engine.startswith("ort_loop"):
            sampler = runtime.load(folder, threads=threads, precision="int8" if engine.endswith("_int8") else "float32")

            def run():
                return len(sampler.text_loop(prime, None, uniforms, temperature)[0])

        elif engine == "ort_step":
            sampler = runtime.load(folder, threads=threads)

            def run():
                ids, state = prime[:, 0], sampler.zero_state(batch)
                for t in range(steps):
                    out = sampler.step(ids, state, uniforms[t], temperature)
                    ids, state = out["next_id"], {k: out[f"{k}_next"] for k in state}
                return steps

        else:
            raise ValueError(f"unknown text engine {engine!r}; text engines: {', '.join(TEXT_ENGINES)}")
        run()  # trace / warm up
        dt, n = _timed(run, repeats)
        results[engine] = (1e3 * dt / n, batch * n / dt, n)
    return results


def random_text_model(folder, units=256, layers=1):
    """A units x layers character model over TEXT_SYMBOLS with random weights, exported (ONNX) to ``folder``."""
    import keras

    from export import export_model
    from zoo.data.text import Vocabulary
    from zoo.models.language import LanguageModel
    from zoo.presets import from_preset, save_preset

    keras.utils.set_random_seed(0)
    model = LanguageModel(Vocabulary(list(TEXT_SYMBOLS), "char"), units=units, num_layers=layers)
    model.build()
    save_preset(model, folder, {"model": "LanguageModel", "note": "random weights, for timing"})
    export_model(folder, folder, formats=("onnx",), int8=True)
    return from_preset(folder)


def shipped_text_presets() -> list[str]:
    from zoo.presets import PRESETS_DIR, list_presets

    names = []
    for name in list_presets():
        with open(os.path.join(PRESETS_DIR, name, "config.json")) as f:
            if json.load(f).get("class_name") == "LanguageModel":
                names.append(name)
    return names


def bench_subject(name, tmp, random_name, build_random):
    """(model, exported folder) for a preset name or folder, or for ``random_name`` a model with
    random weights built and exported into ``tmp`` by ``build_random(folder)``; None
    (with a note naming the export command) for a preset whose ONNX export is missing or
    of a format this runtime does not drive (an export older than the current loops)."""
    from export import runtime
    from zoo.presets import from_preset, preset_path

    if name == random_name:
        folder = os.path.join(tmp, name)
        return build_random(folder), folder
    folder = preset_path(name)
    try:
        runtime.read_export(folder)
    except runtime.ExportNotFound as exc:
        print(f"{name}: skipped ({str(exc).split('; ')[0]}); make a current export with: python -m zoo export --model {name} --format all --int8 --out {folder}", file=sys.stderr)
        return None
    return from_preset(folder), folder


def label(name: str) -> str:
    """The name a model's figures are keyed by: a preset's name, or an exported folder's last part."""
    return os.path.basename(os.path.normpath(name)) if os.sep in name else name


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=300, help="sampling steps per timed run (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batches", default="1,32")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: export.runtime's)")
    p.add_argument("--models", default="iam-synthesis,iam-synthesis-small,iam-prediction", help="preset names (synthesis-3x400: an untrained 3x400 network, random weights) or exported folders (default: %(default)s)")
    p.add_argument("--engines", default=",".join(ENGINES), help="engines to time, handwriting and text (default: all: %(default)s; keras_loop = tf_function)")
    p.add_argument("--text-models", default="text-1x256,shipped", help="text-1x256 (random weights) and/or preset names or exported folders; shipped: every shipped text preset; none to skip")
    p.add_argument("--text-steps", type=int, default=500, help="symbols per timed text run (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args()
    _silence_native_stderr()
    from export import runtime
    from zoo.presets import from_preset

    engines = [ALIASES.get(e, e) for e in args.engines.split(",") if e]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        p.error(f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)} (keras_loop: tf_function)")
    text_engines = [e for e in TEXT_ENGINES if e in engines]  # --engines picks the text engines too
    batches = [int(b) for b in args.batches.split(",")]
    figures, table = {"cpu_count": os.cpu_count(), "steps": args.steps, "text_steps": args.text_steps}, []
    tmp = tempfile.mkdtemp(prefix="bench-sampling-")
    notes = []  # anything odd seen while timing (an engine returning fewer rows than it ran)
    for name in [n for n in args.models.split(",") if n]:  # --models "" times the text models only
        subject = bench_subject(name, tmp, "synthesis-3x400", lambda folder: paper_size_synthesis(from_preset("iam-synthesis").alphabet, folder))
        if subject is None:
            continue
        model, folder = subject
        synthesis = hasattr(model, "alphabet")
        name = label(name)
        for batch in batches:
            res = bench_model(model, folder, batch, args.steps, args.repeats, engines, args.threads, notes)
            base = res.get("tf_function", (None, None, None))[1]
            for engine, (ms, pps, n) in res.items():
                table.append((name, batch, engine, ms, pps, pps / base if base else float("nan")))
                figures[f"{name}/{engine}_b{batch}_ms_per_step"] = round(ms, 4)
                figures[f"{name}/{engine}_b{batch}_points_per_s"] = round(pps, 1)
                figures[f"{name}/{engine}_b{batch}_steps"] = n
        latency, load = first_sample_latency(folder, args.threads, synthesis)
        figures[f"{name}/ort_threads"] = args.threads or runtime.default_threads(os.path.join(folder, "loop.onnx"))
        figures[f"{name}/ort_first_sample_s"] = round(latency, 3)
        figures[f"{name}/ort_session_load_s"] = round(load, 3)
    text_names = [n for n in args.text_models.split(",") if n and n != "none"]
    if "shipped" in text_names:
        text_names = [n for n in text_names if n != "shipped"] + shipped_text_presets()
    for name in text_names:
        subject = bench_subject(name, tmp, "text-1x256", random_text_model)
        if subject is None:
            continue
        model, folder = subject
        name = label(name)
        for batch in batches:
            res = bench_text_model(model, folder, batch, args.text_steps, args.repeats, text_engines, args.threads)
            base = res.get("tf_function", (None, None, None))[1]
            for engine, (ms, cps, _) in res.items():
                table.append((name, batch, engine, ms, cps, cps / base if base else float("nan")))
                figures[f"{name}/{engine}_b{batch}_ms_per_symbol"] = round(ms, 4)
                figures[f"{name}/{engine}_b{batch}_chars_per_s"] = round(cps, 1)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    # The headline figures are those of the paper-size synthesis network.
    head = "synthesis-3x400" if "synthesis-3x400" in args.models.split(",") else label(args.models.split(",")[0])
    for engine in ("ort_loop", "ort_loop_int8"):
        for key in ("b1_ms_per_step", "b1_points_per_s", "b32_points_per_s", "b32_ms_per_step"):
            if f"{head}/{engine}_{key}" in figures:
                figures[f"{engine}_{key}"] = figures[f"{head}/{engine}_{key}"]
    for b in (1, 32):  # int8 over float, measured side by side in this run
        if f"ort_loop_int8_b{b}_points_per_s" in figures and f"ort_loop_b{b}_points_per_s" in figures:
            figures[f"ort_loop_int8_over_float_b{b}"] = round(figures[f"ort_loop_int8_b{b}_points_per_s"] / figures[f"ort_loop_b{b}_points_per_s"], 2)
    if "ort_loop_b1_points_per_s" in figures and "ort_loop_b32_points_per_s" in figures:
        figures["ort_loop_b32_over_b1"] = round(figures["ort_loop_b32_points_per_s"] / figures["ort_loop_b1_points_per_s"], 2)
    # Text headline: the 1 x 256 character model, one line, onnxruntime's whole loop (the default sampler).
    text_head = "text-1x256" if "text-1x256" in text_names else (label(text_names[0]) if text_names else None)
    figures["text_chars_per_s"] = figures.get(f"{text_head}/ort_loop_b1_chars_per_s")
    if f"{text_head}/ort_loop_b32_chars_per_s" in figures:
        figures["text_chars_per_s_b32"] = figures[f"{text_head}/ort_loop_b32_chars_per_s"]
    for b, suffix in ((1, ""), (32, "_b32")):
        if f"{text_head}/ort_loop_int8_b{b}_chars_per_s" in figures:
            figures[f"text_int8_chars_per_s{suffix}"] = figures[f"{text_head}/ort_loop_int8_b{b}_chars_per_s"]
    if notes:
        figures["notes"] = notes
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    print(f"{'model':18s} {'batch':>5s} {'engine':14s} {'ms/step':>9s} {'points/s':>10s} {'vs tf_function':>15s}  (text models: ms per symbol, characters/s)")
    for name, batch, engine, ms, pps, ratio in table:
        print(f"{name:18s} {batch:5d} {engine:14s} {ms:9.3f} {pps:10.0f} {ratio:14.2f}x")
    for k, v in figures.items():
        if k.endswith("first_sample_s") or k.endswith("session_load_s"):
            print(f"{k}: {v} s")
        elif k.endswith("ort_threads"):
            print(f"{k} (onnxruntime intra-op threads, float loop graph): {v}")
    if "ort_loop_b32_over_b1" in figures:
        print(f"onnxruntime loop, batch 32 / batch 1 points per second: {figures['ort_loop_b32_over_b1']}x")
    for b in (1, 32):
        if f"ort_loop_int8_over_float_b{b}" in figures:
            print(f"onnxruntime loop, int8 / float points per second, batch {b}: {figures[f'ort_loop_int8_over_float_b{b}']}x")


if __name__ == "__main__":
    main()
