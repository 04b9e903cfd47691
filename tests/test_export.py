"""Export (issue 5): ONNX and SavedModel parity with Keras, the numpy + onnxruntime sampler, `zoo export`."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO
from export import export_model
from export import runtime
from export.graphs import graphs_for
from zoo.data.alphabet import Alphabet
from zoo.layers import mixture
from zoo.models import HandwritingPredictor, HandwritingSynthesizer
from zoo.presets import from_preset, save_preset, save_styles
from zoo.data.offsets import start_input
from zoo.sampling.driver import encode_lines, line_caps, sampling_noise, text_uniforms
from zoo.sampling.engines import KerasEngine, engine_for
from zoo.sampling.handwriting import sample_unconditional, write
from zoo.sampling.loops import pick_symbol

ALPHABET = Alphabet.from_texts(["Hello world, the quick brown fox jumps over the lazy dog."])
NORM = dict(offset_mean=(4.0, 0.0), offset_std=(10.0, 10.0))
ENV = {**os.environ, "PYTHONPATH": REPO}


def tiny_predictor():
    keras.utils.set_random_seed(1)
    m = HandwritingPredictor(units=16, num_layers=2, num_mixtures=3, **NORM)
    m.build()
    return m


def tiny_synthesizer():
    keras.utils.set_random_seed(2)
    m = HandwritingSynthesizer(ALPHABET, units=16, num_layers=2, num_mixtures=3, window_components=4, **NORM)
    m.build()
    # The window moves ~0.3 characters per point (trained models: ~1/20), so the lines of the
    # parity tests end by the stopping rule well before the step cap.
    bias = keras.ops.convert_to_numpy(m.window.dense.bias).copy()
    bias[2 * m.window_components :] = np.log(0.3)
    m.window.dense.bias.assign(bias)
    return m


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Tiny presets exported in both formats: prediction in-process, synthesis through `zoo export`."""
    root = tmp_path_factory.mktemp("export")
    pred, syn = str(root / "pred"), str(root / "syn")
    save_preset(tiny_predictor(), pred, {"model": "HandwritingPredictor"})
    export_model(pred, pred, int8=True)
    save_preset(tiny_synthesizer(), syn, {"model": "HandwritingSynthesizer"})
    prime = np.random.default_rng(0).normal(0, 5, (25, 3)).astype("float32")
    prime[:, 2] = 0
    save_styles(syn, {"s1": (prime, "the fox")})
    out = str(root / "syn-export")  # another folder: gets the files, the metadata and the styles
    proc = subprocess.run(
        [sys.executable, "-m", "zoo", "export", "--model", syn, "--format", "all", "--int8", "--out", out],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["kind"] == "synthesis" and result["files"] == ["loop.int8.onnx", "loop.onnx", "model.int8.onnx", "model.onnx", "saved_model"]
    return {"pred": pred, "syn": out}


def _ort_run(sess, feeds):
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def _step_feeds(model, batch, rng):
    n, h = model.num_layers, model.units
    feeds = {
        "x": rng.normal(size=(batch, 3)).astype("float32"),
        "h": rng.normal(size=(n, batch, h)).astype("float32") * 0.5,
        "c": rng.normal(size=(n, batch, h)).astype("float32"),
        "noise": sampling_noise(1, batch, 3)[0],
        "bias": np.asarray(0.7, np.float32),
    }
    if isinstance(model, HandwritingSynthesizer):
        _, feeds["text"] = encode_lines(model.alphabet, ["Hello", "the quick fox"][:batch])
        feeds["kappa"] = np.abs(rng.normal(size=(batch, model.window_components))).astype("float32")
        feeds["w"] = rng.random((batch, model.num_chars)).astype("float32")
    return feeds


@pytest.mark.parametrize("which", ["pred", "syn"])
def test_step_graph_matches_tensorflow_and_keras(exported, which):
    folder = exported[which]
    model = from_preset(folder)
    feeds = _step_feeds(model, 2, np.random.default_rng(0))
    tf_out = {k: v.numpy() for k, v in graphs_for(model).step(**feeds).items()}
    sampler = runtime.load(folder)
    ort_out = _ort_run(sampler.step_session, feeds)
    assert set(ort_out) == set(tf_out) and not set(ort_out) & set(feeds)
    for k in tf_out:
        np.testing.assert_allclose(ort_out[k], tf_out[k], atol=1e-4, rtol=1e-4, err_msg=k)
    # The exported step is the step that the Keras model's call scans.
    n = model.num_layers
    state = model.unstack_state({k: feeds[k] for k in model.state_shapes()})
    if which == "syn":
        y_hat, new_state = model((feeds["x"][:, None], feeds["text"]), initial_state=state, return_state=True)
    else:
        y_hat, new_state = model(feeds["x"][:, None], initial_state=state, return_state=True)
    point = keras.ops.convert_to_numpy(mixture.sample_point(y_hat[:, 0], feeds["noise"], model.num_mixtures, 0.7))
    np.testing.assert_allclose(ort_out["point"], point, atol=1e-4)
    np.testing.assert_allclose(ort_out["h_next"][-1], keras.ops.convert_to_numpy(new_state["h"][n - 1]), atol=1e-4)


def test_prediction_loop_matches_tensorflow_and_keras(exported):
    model = from_preset(exported["pred"])
    sampler = runtime.load(exported["pred"])
    noise = sampling_noise(60, 3, seed=5)
    z = np.zeros((model.num_layers, 3, model.units), np.float32)
    x = start_input(3, model.offset_mean, model.offset_std)
    feeds = {"x": x, "h": z, "c": z, "noise": noise, "bias": np.asarray(0.5, np.float32), "caps": np.full(3, 60, np.int32)}
    tf_out = graphs_for(model).loop(**feeds)
    ort_out = _ort_run(sampler.loop_session, feeds)
    np.testing.assert_allclose(ort_out["points"], tf_out["points"].numpy(), atol=1e-4)
    assert list(ort_out["ends"]) == [60, 60, 60]
    # Same seed, same strokes: the Keras engine and the onnxruntime engine.
    keras_strokes = sample_unconditional(model, steps=60, count=3, bias=0.5, seed=5, backend="keras")
    std = np.asarray(NORM["offset_std"] + (1.0,), np.float32)
    np.testing.assert_allclose(sampler.sample(60, 3, 0.5, seed=5) / std, keras_strokes / std, atol=1e-4)
    # A step-by-step drive of the step graph gives the loop's points (the loop wraps the same step).
    state, x_t = {"h": z, "c": z}, x
    for t in range(60):
        out = sampler.step(x_t, state, noise[t], 0.5)
        np.testing.assert_allclose(out["point"], ort_out["points"][t], atol=1e-4)
        x_t, state = out["point"], {k: out[f"{k}_next"] for k in state}


@pytest.mark.parametrize("style", [None, "s1"])
def test_synthesis_loop_matches_keras_write(exported, style):
    model = from_preset(exported["syn"])
    sampler = runtime.load(exported["syn"])
    lines = ["Hello world", "the fox", "a"]
    kw = dict(bias=0.5, seed=3, style=style, max_steps_per_char=40, return_alignment=True)
    k_lines, k_align = write(model, lines, backend="keras", **kw)
    # Every line ended by the stopping rule, well before its own cap.
    caps = line_caps([len(t) for t in lines], None, 40)
    assert all(2 <= len(a) < cap / 2 for a, cap in zip(k_lines, caps)), [len(a) for a in k_lines]
    std = np.asarray(NORM["offset_std"] + (1.0,), np.float32)
    o_lines, o_align = sampler.write(lines, **kw)
    assert [len(a) for a in o_lines] == [len(a) for a in k_lines]
    for a, b in zip(o_lines, k_lines):
        np.testing.assert_allclose(a / std, b / std, atol=1e-4)
    for (pa, ta), (pb, tb) in zip(o_align, k_align):
        assert ta == tb
        np.testing.assert_allclose(pa, pb, atol=1e-4)
    # write() on a preset with a current export takes the onnxruntime path by default.
    assert all(np.array_equal(a, b) for a, b in zip(write(model, lines, **{**kw, "return_alignment": False}), o_lines))
    assert engine_for(model).folder == exported["syn"]


def test_weights_changed_in_memory_never_sample_a_stale_export(exported):
    model = from_preset(exported["syn"])
    assert not isinstance(engine_for(model), KerasEngine)  # a current export: onnxruntime
    before = write(model, ["Hello"], bias=0.5, seed=1)
    model.set_weights([w * 1.05 for w in model.get_weights()])
    assert isinstance(engine_for(model), KerasEngine)  # the export no longer holds these weights
    after = write(model, ["Hello"], bias=0.5, seed=1)
    forced = write(model, ["Hello"], bias=0.5, seed=1, backend="keras")
    assert len(after[0]) == len(forced[0]) and np.array_equal(after[0], forced[0])
    assert len(after[0]) != len(before[0]) or not np.allclose(after[0], before[0])
    with pytest.raises(ValueError, match="backend must be one of"):
        write(model, ["Hello"], backend="torch")


def test_saved_model_reload_reproduces_keras(exported):
    for which in ("pred", "syn"):
        model = from_preset(exported[which])
        loaded = tf.saved_model.load(os.path.join(exported[which], "saved_model"))
        assert {"step", "sample_loop", "log_likelihood"} <= set(loaded.signatures)
        rng = np.random.default_rng(4)
        x = rng.normal(size=(2, 9, 3)).astype("float32")
        targets = np.concatenate([rng.normal(size=(2, 9, 2)), rng.random((2, 9, 1)) < 0.2], -1).astype("float32")
        mask = np.ones((2, 9), np.float32)
        mask[1, 6:] = 0
        args = {"inputs": x, "targets": targets, "mask": mask}
        inputs = x
        if which == "syn":
            _, args["text"] = encode_lines(model.alphabet, ["Hello", "the quick fox"])
            inputs = (x, args["text"])
        expected = -keras.ops.convert_to_numpy(mixture.sequence_nll(model(inputs), targets, mask, model.num_mixtures))
        got = loaded.signatures["log_likelihood"](**{k: tf.constant(v) for k, v in args.items()})["log_likelihood"].numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
        feeds = _step_feeds(model, 2, rng)
        step = loaded.signatures["step"](**{k: tf.constant(v) for k, v in feeds.items()})
        ort_out = _ort_run(runtime.load(exported[which]).step_session, feeds)
        np.testing.assert_allclose(step["point"].numpy(), ort_out["point"], atol=1e-4)
    written = loaded.signatures["write"](text=tf.constant(["Hello", "fox"]), bias=tf.constant(0.5), seed=tf.constant(1, tf.int64), max_steps_per_char=tf.constant(5))
    lengths = written["lengths"].numpy()
    assert written["strokes"].shape[0] == 2 and 1 <= lengths[0] <= 25 and 1 <= lengths[1] <= 15  # 5 points per character of each line
    assert written["strokes"].numpy()[0, lengths[0] - 1, 2] == 1.0
    # As zoo write: an unknown character or an empty line is refused with the fix, never written as a space.
    args = dict(bias=tf.constant(0.5), seed=tf.constant(1, tf.int64), max_steps_per_char=tf.constant(5))
    with pytest.raises(tf.errors.InvalidArgumentError, match="cannot write: it knows only"):
        loaded.signatures["write"](text=tf.constant(["Hello", "snow\u2603man"]), **args)
    with pytest.raises(tf.errors.InvalidArgumentError, match="a line of the text is empty"):
        loaded.signatures["write"](text=tf.constant(["Hello", "  "]), **args)


def test_runtime_imports_no_tensorflow(exported):
    code = (
        "import sys\n"
        "for name in ('tensorflow', 'keras', 'tensorflow_probability', 'tf2onnx'):\n"
        "    sys.modules[name] = None  # any import of them raises ImportError\n"
        "from export.runtime import load\n"
        f"lines = load({exported['syn']!r}).write(['Hello'], bias=1.0, seed=0, style='s1', max_steps_per_char=5)\n"
        f"strokes = load({exported['pred']!r}).sample(steps=20, count=2, seed=0)\n"
        "print(len(lines), strokes.shape)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "(2,", "20,", "3)"]


def test_without_onnxruntime_auto_falls_back_to_keras(exported):
    code = (
        "import sys\n"
        "sys.modules['onnxruntime'] = None  # as if it were not installed\n"
        "from zoo.presets import from_preset\n"
        "from zoo.sampling.handwriting import write\n"
        f"m = from_preset({exported['syn']!r})\n"
        "print(len(write(m, ['Hello'], seed=0)))\n"
        "try:\n"
        "    write(m, ['Hello'], backend='onnx')\n"
        "except ValueError as exc:\n"
        "    print('refused:', exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "1" and "needs onnxruntime" in lines[1] and "pip install onnxruntime" in lines[1]
    out = os.path.join(os.path.dirname(exported["syn"]), "no-ort.svg")
    cli = "import sys, runpy; sys.modules['onnxruntime'] = None; sys.argv = ['zoo', 'write', 'Hello', '--model', sys.argv[1], '--out', sys.argv[2]]; runpy.run_module('zoo', run_name='__main__')"
    proc = subprocess.run([sys.executable, "-c", cli, exported["syn"], out], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["lines"] == 1 and os.path.getsize(out) > 200


def test_missing_corrupt_and_stale_exports(exported, tmp_path):
    with pytest.raises(runtime.ExportNotFound, match="no folder"):
        runtime.load(str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(runtime.ExportNotFound, match="zoo export"):
        runtime.load(str(empty))
    broken = str(tmp_path / "broken")
    shutil.copytree(exported["pred"], broken)
    with open(os.path.join(broken, "loop.onnx"), "wb") as f:
        f.write(b"not an onnx graph")
    with pytest.raises(runtime.ExportNotFound, match="cannot load .*loop.onnx"):
        runtime.load(broken)
    os.remove(os.path.join(broken, "loop.onnx"))
    with pytest.raises(runtime.ExportNotFound, match="loop.onnx is missing"):
        runtime.load(broken)
    # New weights after the export: `auto` samples with Keras, `onnx` still can be forced.
    stale = str(tmp_path / "stale")
    shutil.copytree(exported["pred"], stale)
    assert runtime.current_export(stale)
    model = from_preset(stale)
    model.set_weights([w * 1.01 for w in model.get_weights()])
    model.save_weights(os.path.join(stale, "model.weights.h5"))
    assert not runtime.current_export(stale)
    assert runtime.has_onnx(stale)
    # Exporting one format again keeps the record of the other, made from the same weights.
    again = str(tmp_path / "again")
    shutil.copytree(exported["pred"], again)
    entry = export_model(again, again, formats=("saved_model",))
    assert entry["formats"] == ["saved_model", "onnx"] and entry["onnx"]["int8"] and runtime.current_export(again, "int8")
    # `--backend onnx` on a preset without an export fails with the command that makes one.
    plain = str(tmp_path / "plain")
    save_preset(tiny_predictor(), plain, {})
    proc = subprocess.run(
        [sys.executable, "-m", "zoo", "sample", "--model", plain, "--backend", "onnx", "--steps", "5", "--out", str(tmp_path / "s.svg")],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2 and "zoo export" in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- text


def tiny_language_model(level="char"):
    from zoo.data.text import Vocabulary
    from zoo.models.language import LanguageModel

    keras.utils.set_random_seed(3)
    vocab = Vocabulary(list("abcdefgh \n"), "char") if level == "char" else Vocabulary(list(range(256)), "byte")
    m = LanguageModel(vocab, units=16, num_layers=2)
    m.build()
    m.output_kernel.assign(m.output_kernel * 6.0)  # peaky softmax: the prime and the state matter to the draws
    return m


@pytest.fixture(scope="module")
def text_exported(tmp_path_factory):
    """A tiny character model exported in both formats, and a byte model in ONNX."""
    root = tmp_path_factory.mktemp("export-text")
    char, byte = str(root / "char"), str(root / "byte")
    save_preset(tiny_language_model("char"), char, {"model": "LanguageModel"})
    entry = export_model(char, char, int8=True)
    assert entry["onnx"]["int8"]["graphs"]["loop"]["file"] == "loop.int8.onnx"
    assert entry["runtime"]["kind"] == "text" and entry["onnx"]["graphs"]["loop"]["outputs"] == ["c_final", "h_final", "ids"]
    save_preset(tiny_language_model("byte"), byte, {"model": "LanguageModel"})
    export_model(byte, byte, formats=("onnx",))
    return {"char": char, "byte": byte}


def _text_step_feeds(model, batch, rng):
    n, h = model.num_layers, model.units
    return {
        "ids": rng.integers(0, model.vocab_size, batch).astype("int32"),
        "h": rng.normal(size=(n, batch, h)).astype("float32") * 0.5,
        "c": rng.normal(size=(n, batch, h)).astype("float32"),
        "u": rng.random(batch).astype("float32"),
        "temperature": np.asarray(0.8, np.float32),
    }


def test_text_step_and_loop_match_tensorflow_and_keras(text_exported):
    folder = text_exported["char"]
    model, sampler = from_preset(folder), runtime.load(folder)
    graphs = graphs_for(model)
    feeds = _text_step_feeds(model, 3, np.random.default_rng(0))
    tf_out = {k: v.numpy() for k, v in graphs.step(**feeds).items()}
    ort_out = _ort_run(sampler.step_session, feeds)
    assert set(ort_out) == set(tf_out) == {"logits", "next_id", "h_next", "c_next"}
    for k in ("logits", "h_next", "c_next"):
        np.testing.assert_allclose(ort_out[k], tf_out[k], atol=1e-4, rtol=1e-4, err_msg=k)
    np.testing.assert_array_equal(ort_out["next_id"], tf_out["next_id"])
    # The fused step is the Keras model's step, and the draw is pick_symbol's.
    state = model.unstack_state({"h": feeds["h"], "c": feeds["c"]})
    logits, new_state = model(feeds["ids"][:, None], initial_state=state, return_state=True)
    np.testing.assert_allclose(ort_out["logits"], keras.ops.convert_to_numpy(logits[:, 0]), atol=1e-4)
    np.testing.assert_allclose(ort_out["h_next"][-1], keras.ops.convert_to_numpy(new_state[-1][0]), atol=1e-4)
    np.testing.assert_array_equal(ort_out["next_id"], keras.ops.convert_to_numpy(pick_symbol(logits[:, 0], feeds["u"], 0.8)))
    # The whole loop: same uniforms, same ids in TensorFlow, onnxruntime and its step graph.
    prime = np.asarray([[1, 2, 3, 4], [5, 5, 9, 0], [10, 1, 1, 2]], np.int32)
    uniforms = text_uniforms(50, 3, seed=2)
    z = np.zeros((model.num_layers, 3, model.units), np.float32)
    loop_feeds = {"prime": prime, "h": z, "c": z, "uniforms": uniforms, "temperature": np.asarray(0.9, np.float32)}
    tf_ids = graphs.loop(**loop_feeds)["ids"].numpy()
    ort_ids, ort_state = sampler.text_loop(prime, None, uniforms, 0.9)
    keras_ids, keras_state = KerasEngine(model).text_loop(prime, None, uniforms, 0.9)
    assert tf_ids.shape == (50, 3) and len(np.unique(tf_ids)) > 3
    np.testing.assert_array_equal(ort_ids, tf_ids)
    np.testing.assert_array_equal(keras_ids, tf_ids)
    np.testing.assert_allclose(ort_state["h"], keras_state["h"], atol=1e-5)
    # Driving the step graph symbol by symbol draws the same ids (the loop wraps the same step).
    state, ids = {"h": z, "c": z}, prime[:, 0]
    for t in range(1, prime.shape[1]):
        state = {k: v for k, v in _ort_run(sampler.step_session, {"ids": ids, **state, "u": uniforms[0], "temperature": np.asarray(0.9, np.float32)}).items() if k.endswith("_next")}
        state, ids = {k[:-5]: v for k, v in state.items()}, prime[:, t]
    for t in range(50):
        out = sampler.step(ids, state, uniforms[t], 0.9)
        np.testing.assert_array_equal(out["next_id"], tf_ids[t])
        ids, state = out["next_id"], {k: out[f"{k}_next"] for k in state}
    # Different primes lead to different text (the loop reads them).
    assert not np.array_equal(tf_ids[:, 0], tf_ids[:, 1])


@pytest.mark.parametrize("level", ["char", "byte"])
def test_text_runtime_gives_the_keras_text_for_a_seed(text_exported, level):
    from zoo.sampling.text import sample_text

    folder = text_exported[level]
    model, sampler = from_preset(folder), runtime.load(folder)
    for prime, temperature in (("abc", 0.7), ("", 1.0)):
        keras_text = "".join(sample_text(model, prime, 90, temperature, seed=4, backend="keras"))
        assert len(keras_text) > 20
        assert "".join(sampler.sample_text(prime, 90, temperature, seed=4)) == keras_text, prime
        # sample_text on a preset with a current export takes the onnxruntime path by default.
        assert "".join(sample_text(model, prime, 90, temperature, seed=4)) == keras_text
        assert engine_for(model).folder == folder
    with pytest.raises(ValueError, match="temperature"):
        next(sampler.sample_text("a", 5, temperature=0))


def test_text_saved_model_reload(text_exported):
    folder = text_exported["char"]
    model = from_preset(folder)
    loaded = tf.saved_model.load(os.path.join(folder, "saved_model"))
    assert {"step", "sample_loop", "log_likelihood", "sample"} <= set(loaded.signatures)
    rng = np.random.default_rng(5)
    ids = rng.integers(1, model.vocab_size, (2, 12)).astype("int32")
    mask = np.ones((2, 11), np.float32)
    mask[1, 7:] = 0
    got = loaded.signatures["log_likelihood"](inputs=tf.constant(ids[:, :-1]), targets=tf.constant(ids[:, 1:]), mask=tf.constant(mask))["log_likelihood"].numpy()
    nll = keras.ops.sparse_categorical_crossentropy(ids[:, 1:], model(ids[:, :-1]), from_logits=True)
    np.testing.assert_allclose(got, -np.sum(keras.ops.convert_to_numpy(nll) * mask, axis=1), rtol=1e-5, atol=1e-4)
    feeds = _text_step_feeds(model, 2, rng)
    step = loaded.signatures["step"](**{k: tf.constant(v) for k, v in feeds.items()})
    ort_out = _ort_run(runtime.load(folder).step_session, feeds)
    np.testing.assert_allclose(step["logits"].numpy(), ort_out["logits"], atol=1e-4)
    np.testing.assert_array_equal(step["next_id"].numpy(), ort_out["next_id"])
    sampled = loaded.signatures["sample"](prime=tf.constant("abc"), count=tf.constant(2), length=tf.constant(15), temperature=tf.constant(1.0), seed=tf.constant(1, tf.int64))
    assert sampled["ids"].shape == (2, 15)
    assert [t.decode() for t in sampled["text"].numpy()] == [model.vocabulary.decode(i) for i in sampled["ids"].numpy()]


def test_zoo_sample_text_keras_and_onnx_agree(text_exported, capsys):
    from zoo.cli import main

    texts = {}
    for backend in ("keras", "onnx", "auto"):
        main(["sample", "--model", text_exported["char"], "--prime", "ab", "--length", "80", "--seed", "6", "--temperature", "0.8", "--backend", backend])
        texts[backend] = capsys.readouterr().out
    assert texts["keras"].startswith("ab") and len(texts["keras"]) == 2 + 80 + 1
    assert texts["onnx"] == texts["keras"] == texts["auto"]


def test_text_runtime_imports_no_tensorflow(text_exported):
    code = (
        "import sys\n"
        "for name in ('tensorflow', 'keras', 'tensorflow_probability', 'tf2onnx'):\n"
        "    sys.modules[name] = None\n"
        "from export.runtime import load\n"
        f"print(len(''.join(load({text_exported['char']!r}).sample_text('ab', 30, seed=1))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["30"]


# ---------------------------------------------------------------- int8


# The int8 graphs store weights in 7 bits with a scale per output column
# (error <= max|w_col| / 126, reduce_range: see export.onnx.quantize_int8) and
# quantize each matmul's input to uint8 per call (error <= range / 510): a gate
# pre-activation moves by about 1% of its scale. The tiny models' states,
# logits and mixture parameters are O(1); measured, a step stays within 0.009
# of float (logits of the peaky text model: 0.027 of 4.3), so 0.05 + 5% leaves
# a margin of ~2-5x while still catching an overflowing kernel (8-bit weights
# on AVX2: 0.14, logits 0.8). Discrete outputs (the drawn point's pen bit, next_id) may flip near a
# threshold and are only checked for shape.
INT8_ATOL = 0.05


def _int8_step_close(folder, feeds, skip=("point", "next_id")):
    float_out = _ort_run(runtime.load(folder).step_session, feeds)
    int8 = runtime.load(folder, precision="int8")
    assert int8.precision == "int8" and int8.step_session._model_path.endswith("model.int8.onnx")
    int8_out = _ort_run(int8.step_session, feeds)
    assert [o.name for o in int8.step_session.get_outputs()] == list(float_out)
    for k, v in float_out.items():
        assert int8_out[k].shape == v.shape and int8_out[k].dtype == v.dtype, k
        if k not in skip and v.dtype == np.float32:
            np.testing.assert_allclose(int8_out[k], v, atol=INT8_ATOL, rtol=0.05, err_msg=k)
    return int8


@pytest.mark.parametrize("which", ["pred", "syn"])
def test_int8_graphs_run_close_to_float(exported, which):
    folder = exported[which]
    model = from_preset(folder)
    int8 = _int8_step_close(folder, _step_feeds(model, 2, np.random.default_rng(0)))
    float_sampler = runtime.load(folder)
    assert [o.name for o in int8.loop_session.get_outputs()] == [o.name for o in float_sampler.loop_session.get_outputs()]
    if which == "pred":
        strokes = int8.sample(steps=40, count=3, bias=0.5, seed=5)
        assert strokes.shape == (3, 40, 3) and np.all(np.isfinite(strokes))
        # Python's sample path takes the int8 graphs when asked.
        np.testing.assert_array_equal(sample_unconditional(model, steps=40, count=3, bias=0.5, seed=5, precision="int8"), strokes)
    else:
        lines, align = int8.write(["Hello world", "the fox"], bias=0.5, seed=3, max_steps_per_char=12, return_alignment=True)
        assert len(lines) == 2 and all(2 <= len(a) <= 12 * len(t) and np.all(np.isfinite(a)) for a, t in zip(lines, ["Hello world", "the fox"]))
        assert [t for _, t in align] == ["Hello world", "the fox"]
        got = write(model, ["Hello world", "the fox"], bias=0.5, seed=3, max_steps_per_char=12, precision="int8")
        assert all(np.array_equal(a, b) for a, b in zip(got, lines))
        assert engine_for(model, precision="int8").precision == "int8"


def test_int8_text_graphs_and_cli(text_exported, capsys):
    from zoo.cli import main

    folder = text_exported["char"]
    model = from_preset(folder)
    int8 = _int8_step_close(folder, _text_step_feeds(model, 3, np.random.default_rng(0)))
    ids, state = int8.text_loop(np.asarray([[1, 2, 3]], np.int32), None, text_uniforms(30, 1, seed=2), 0.9)
    assert ids.shape == (30, 1) and state["h"].shape == (model.num_layers, 1, model.units)
    main(["sample", "--model", folder, "--prime", "ab", "--length", "40", "--seed", "6", "--precision", "int8"])
    out = capsys.readouterr().out
    assert out.startswith("ab") and len(out) == 2 + 40 + 1
    assert out[2:-1] == "".join(int8.sample_text("ab", 40, seed=6))


def test_int8_missing_names_the_command(text_exported, tmp_path):
    folder = text_exported["byte"]  # exported without --int8
    with pytest.raises(runtime.ExportNotFound, match="--int8"):
        runtime.load(folder, precision="int8")
    with pytest.raises(ValueError, match="precision"):
        runtime.load(folder, precision="int4")
    # A later export without --int8 drops the int8 graphs (they would be stale).
    again = str(tmp_path / "again")
    shutil.copytree(text_exported["char"], again)
    entry = export_model(again, again, formats=("onnx",))
    assert "int8" not in entry["onnx"] and not os.path.exists(os.path.join(again, "loop.int8.onnx"))
    assert not runtime.has_onnx(again, "int8") and runtime.has_onnx(again)


def test_default_threads_follow_graph_size(tmp_path, monkeypatch):
    monkeypatch.delenv("ZOO_ORT_THREADS", raising=False)
    small, large = tmp_path / "small.onnx", tmp_path / "large.onnx"
    small.write_bytes(b"\0" * 1000)
    large.write_bytes(b"\0" * (runtime.LARGE_GRAPH_BYTES + 1))
    cores = len(os.sched_getaffinity(0))
    assert runtime.default_threads(str(small)) == 1
    assert runtime.default_threads(str(large)) == max(1, min(cores, 4))
    assert runtime.default_threads(None) == 1
    monkeypatch.setenv("ZOO_ORT_THREADS", "3")
    assert runtime.default_threads(str(small)) == 3 and runtime.default_threads(str(large)) == 3
