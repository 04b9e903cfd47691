"""Sampling speed of the handwriting models, every engine measured side by side in one run.

For each model (a 3 x 400 synthesis network with random weights, the paper's
size, and the shipped 3 x 128 presets) and batch 1 and 32: milliseconds per
sampling step and pen points per second for Keras eager, tf.function (the
Keras sampler), XLA, the SavedModel's whole-loop signature, onnxruntime
driving the step graph from Python, onnxruntime's whole-loop graph, and its
int8 copy (``ort_loop_int8``, from ``zoo export --int8``; skipped for a preset
exported without it); the ratios are to tf.function. Also the first-sample latency of the onnxruntime
sampler including loading its sessions.

The text models (a 1 x 256 character model with random weights over a
50-symbol vocabulary, and every shipped text preset) are measured the same
way in characters per second: tf.function (the Keras sampler, which reads
each drawn symbol back to stream it), onnxruntime driving the step graph, and
onnxruntime's whole-loop graph, float and int8.

    python bench/sampling.py                 # table
    python bench/sampling.py --json          # one JSON object (ort_loop_b1_ms_per_step, ort_loop_int8_b1_ms_per_step, text_chars_per_s, ...)

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


def bench_model(model, folder, batch, steps, repeats, engines, threads):
    """{engine: (ms per step, points per second)} for sampling ``steps`` points of ``batch`` lines."""
    import numpy as np
    import tensorflow as tf
    from keras import ops

    from export import runtime
    from zoo.layers import mixture
    from zoo.sampling import handwriting
    from zoo.sampling.common import encode_lines, sampling_noise

    synthesis = hasattr(model, "alphabet")
    noise = sampling_noise(steps, batch, 0)
    x0 = model.start_input(batch)
    feeds_text = {}
    if synthesis:
        _, padded = encode_lines(model.alphabet, [TEXT] * batch)
        lengths = np.full(batch, len(TEXT))
        feeds_text = {"text": padded}
    results = {}

    def keras_fn(step, steps=steps):
        def run():
            x, state = ops.convert_to_tensor(x0), model.zero_state(batch)
            if synthesis:
                ids, masks = ops.convert_to_tensor(padded), handwriting.text_end_masks(lengths, padded.shape[1])
            for t in range(steps):
                n = ops.convert_to_tensor(noise[t])
                if synthesis:
                    x, state, _, _ = step(x, ids, state, n, masks)
                else:
                    x, state = step(x, state, n)
            ops.convert_to_numpy(x)
            return steps

        return run

    def raw_step(x, *args):
        if synthesis:
            ids, state, n, masks = args
            y_hat, state, window = model((x, ids), initial_state=state, return_state=True, return_window=True)
            phi = window["phi"][:, 0]
            return mixture.sample_point(y_hat[:, 0], n, model.num_mixtures, 0.0)[:, None], state, phi, handwriting.past_the_end(phi, masks)
        state, n = args
        y_hat, state = model(x, initial_state=state, return_state=True)
        return mixture.sample_point(y_hat[:, 0], n, model.num_mixtures, 0.0)[:, None], state

    for engine in engines:
        if engine.endswith("_int8") and not runtime.has_onnx(folder, "int8"):
            print(f"{folder}: no int8 graphs, {engine} skipped; make them with python -m zoo export --model {folder} --format all --int8 --out {folder}", file=sys.stderr)
            continue
        if engine == "keras_eager":
            dt, n = _timed(keras_fn(raw_step, steps=max(10, steps // 10)), 1)  # eager is slow: fewer steps, once
        elif engine == "tf_function":
            step = handwriting.make_write_step(model, 0.0) if synthesis else handwriting.make_step(model, 0.0)
            keras_fn(step)()  # trace
            dt, n = _timed(keras_fn(step), repeats)
        elif engine == "xla":
            step = tf.function(raw_step, jit_compile=True, reduce_retracing=True)
            keras_fn(step)()
            dt, n = _timed(keras_fn(step), repeats)
        elif engine == "saved_model":
            loaded = tf.saved_model.load(os.path.join(folder, "saved_model"))
            sig = loaded.signatures["sample_loop"]
            state = {k: tf.constant(v) for k, v in runtime.load(folder).zero_state(batch).items()}
            args = dict(x=tf.constant(x0[:, 0]), **state, noise=tf.constant(noise), bias=tf.constant(0.0), **{k: tf.constant(v) for k, v in feeds_text.items()})
            sig(**args)

            def run():
                return int(sig(**args)["points"].shape[0])

            dt, n = _timed(run, repeats)
        else:
            sampler = runtime.load(folder, threads=threads, precision="int8" if engine.endswith("_int8") else "float32")
            zero = sampler.zero_state(batch)
            bias = np.asarray(0.0, np.float32)
            if engine.startswith("ort_loop"):
                feeds = {"x": x0[:, 0], **zero, **feeds_text, "noise": noise, "bias": bias}
                sampler.loop_session.run(["points"], feeds)

                def run():
                    return int(sampler.loop_session.run(["points"], feeds)[0].shape[0])

            else:

                def run():
                    x, state = x0[:, 0], zero
                    for t in range(steps):
                        out = sampler.step(x, state, noise[t], bias, **feeds_text)
                        x, state = out["point"], {k: out[f"{k}_next"] for k in zero}
                    return steps

                run()
            dt, n = _timed(run, repeats)
        results[engine] = (1e3 * dt / n, batch * n / dt)
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
    """{engine: (ms per symbol, characters per second)} for drawing ``steps`` symbols for each of ``batch`` lines."""
    import numpy as np
    from keras import ops

    from export import runtime
    from zoo.sampling.common import text_prime_ids, text_uniforms
    from zoo.sampling.text import make_text_step

    uniforms = text_uniforms(steps, batch, 0)
    prime = np.repeat(text_prime_ids(model.vocabulary, "")[None, -1:], batch, 0)
    temperature = np.float32(1.0)
    results = {}
    for engine in engines:
        if engine.endswith("_int8") and not runtime.has_onnx(folder, "int8"):
            print(f"{folder}: no int8 graphs, {engine} skipped; make them with python -m zoo export --model {folder} --format all --int8 --out {folder}", file=sys.stderr)
            continue
        if engine == "tf_function":
            step = make_text_step(model)

            def run():
                ids, state = prime, model.zero_state(batch)
                for t in range(steps):
                    nxt, state = step(ids, state, uniforms[t], temperature)
                    ids = ops.convert_to_numpy(nxt)[:, None]  # as sample_text, which streams each symbol
                return steps

        else:
            sampler = runtime.load(folder, threads=threads, precision="int8" if engine.endswith("_int8") else "float32")
            use_loop = engine.startswith("ort_loop")

            def run():
                return len(sampler.sample_ids(prime, uniforms, temperature, use_loop=use_loop)[0])

        run()  # trace / warm up
        dt, n = _timed(run, repeats)
        results[engine] = (1e3 * dt / n, batch * n / dt)
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
    """(model, exported folder) for a preset name, or for ``random_name`` a model with
    random weights built and exported into ``tmp`` by ``build_random(folder)``; None
    (with a note) for a preset that carries no ONNX export."""
    from export import runtime
    from zoo.presets import from_preset, preset_path

    if name == random_name:
        folder = os.path.join(tmp, name)
        return build_random(folder), folder
    folder = preset_path(name)
    if not runtime.has_onnx(folder):
        print(f"{name}: no ONNX export; run python -m zoo export --model {name} --format all --out {folder}", file=sys.stderr)
        return None
    return from_preset(folder), folder


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=300, help="sampling steps per timed run (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batches", default="1,32")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: export.runtime's)")
    p.add_argument("--models", default="synthesis-3x400,iam-synthesis,iam-prediction")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--text-models", default="text-1x256,shipped", help="text-1x256 (random weights) and/or preset names; shipped: every shipped text preset; none to skip")
    p.add_argument("--text-steps", type=int, default=500, help="symbols per timed text run (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args()
    _silence_native_stderr()
    from export import runtime
    from zoo.presets import from_preset

    engines = args.engines.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    figures, table = {"cpu_count": os.cpu_count(), "steps": args.steps, "text_steps": args.text_steps}, []
    tmp = tempfile.mkdtemp(prefix="bench-sampling-")
    for name in [n for n in args.models.split(",") if n]:  # --models "" times the text models only
        subject = bench_subject(name, tmp, "synthesis-3x400", lambda folder: paper_size_synthesis(from_preset("iam-synthesis").alphabet, folder))
        if subject is None:
            continue
        model, folder = subject
        synthesis = hasattr(model, "alphabet")
        for batch in batches:
            res = bench_model(model, folder, batch, args.steps, args.repeats, engines, args.threads)
            base = res.get("tf_function", (None, None))[1]
            for engine, (ms, pps) in res.items():
                table.append((name, batch, engine, ms, pps, pps / base if base else float("nan")))
                figures[f"{name}/{engine}_b{batch}_ms_per_step"] = round(ms, 4)
                figures[f"{name}/{engine}_b{batch}_points_per_s"] = round(pps, 1)
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
        for batch in batches:
            res = bench_text_model(model, folder, batch, args.text_steps, args.repeats, TEXT_ENGINES, args.threads)
            base = res["tf_function"][1]
            for engine, (ms, cps) in res.items():
                table.append((name, batch, engine, ms, cps, cps / base))
                figures[f"{name}/{engine}_b{batch}_ms_per_symbol"] = round(ms, 4)
                figures[f"{name}/{engine}_b{batch}_chars_per_s"] = round(cps, 1)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    # The headline figures are those of the paper-size synthesis network.
    head = "synthesis-3x400" if "synthesis-3x400" in args.models.split(",") else args.models.split(",")[0]
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
    text_head = "text-1x256" if "text-1x256" in text_names else (text_names[0] if text_names else None)
    figures["text_chars_per_s"] = figures.get(f"{text_head}/ort_loop_b1_chars_per_s")
    if f"{text_head}/ort_loop_b32_chars_per_s" in figures:
        figures["text_chars_per_s_b32"] = figures[f"{text_head}/ort_loop_b32_chars_per_s"]
    for b, suffix in ((1, ""), (32, "_b32")):
        if f"{text_head}/ort_loop_int8_b{b}_chars_per_s" in figures:
            figures[f"text_int8_chars_per_s{suffix}"] = figures[f"{text_head}/ort_loop_int8_b{b}_chars_per_s"]
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    print(f"{'model':18s} {'batch':>5s} {'engine':14s} {'ms/step':>9s} {'points/s':>10s} {'vs tf.function':>15s}  (text models: ms per symbol, characters/s)")
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
