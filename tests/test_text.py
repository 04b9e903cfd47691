"""Text prediction (Graves sec. 3): readers, streams, carried state, dynamic evaluation, sampling."""

import collections
import math
import os
import zipfile

import keras
import numpy as np
import pytest

from zoo.data.pipeline import TextStreams
from zoo.data.text import TextDataError, Vocabulary, read_corpus, read_ptb_chars, read_ptb_words
from zoo.evaluation import evaluate_text
from zoo.models.language import LanguageModel
from zoo.sampling.loops import pick_symbol
from zoo.sampling.text import sample_text
from zoo.training.tbptt import CarriedState

DATA = os.environ.get("ZOO_DATA_DIR")


def write(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


# ---------------------------------------------------------------- readers


def test_ptb_char_file_reads_back_as_text_with_spaces(tmp_path):
    p = write(tmp_path / "ptb.char.test.txt", b" a _ c a t _ < u n k > \n\n t h e _ N \n")
    assert read_ptb_chars(p) == "a cat <unk>\nthe N\n"
    assert read_corpus(p, "char") == "a cat <unk>\nthe N\n"


def test_ptb_words_count_eos_and_keep_unk(tmp_path):
    p = write(tmp_path / "ptb.valid.txt", b" the <unk> sat \n\n a N \n")
    words = read_ptb_words(p)
    assert words == ["the", "<unk>", "sat", "<eos>", "a", "N", "<eos>"]
    vocab = Vocabulary.build(words, "word")
    ids = vocab.encode(words)
    assert ids[1] == 0  # PTB's <unk> is the vocabulary's unknown id
    assert len(vocab) == 6 and vocab.decode(ids[:4]) == "the <unk> sat\n"


def test_word_vocabulary_keeps_the_most_frequent():
    vocab = Vocabulary.build(["a", "b", "a", "c", "a", "b"], "word", max_size=3)
    assert vocab.symbols == ["a", "b"] and len(vocab) == 3
    assert list(vocab.encode(["a", "b", "c"])) == [1, 2, 0]


def test_unseen_characters_encode_as_unknown_and_are_counted():
    vocab = Vocabulary.build("hello world", "char")
    ids = vocab.encode("hello, world!")
    assert vocab.unknown_count(ids) == 2
    assert vocab.decode(vocab.encode("hold")) == "hold"


def test_byte_level_round_trip_of_any_utf8():
    vocab = Vocabulary.build(b"", "byte")
    text = "naïve café — ünïcode ✓"
    ids = vocab.encode(text)
    assert len(vocab) == 257 and vocab.unknown_count(ids) == 0
    assert vocab.decode(ids) == text
    assert Vocabulary.from_config(vocab.get_config()).decode(ids) == text


def test_any_file_and_zip_member(tmp_path):
    p = write(tmp_path / "notes.txt", "first line\nsecond\n".encode())
    assert read_corpus(p, "char") == "first line\nsecond\n"
    assert read_corpus(p, "word") == ["first", "line", "<eos>", "second", "<eos>"]
    z = tmp_path / "text8.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("text8", " anarchism originated as a term")
    assert read_corpus(str(z), "char").startswith(" anarchism")
    assert read_corpus(str(z), "byte")[:3] == b" an"


def test_bad_text_files_give_errors_that_say_what_to_do(tmp_path):
    with pytest.raises(TextDataError, match="--level byte"):
        read_corpus(write(tmp_path / "latin1.txt", "café".encode("latin-1")), "char")
    with pytest.raises(TextDataError, match="empty"):
        read_corpus(write(tmp_path / "empty.txt", b""), "char")
    with pytest.raises(TextDataError, match="no such file"):
        read_corpus(str(tmp_path / "missing.txt"), "char")
    with pytest.raises(TextDataError, match="zip"):
        read_corpus(write(tmp_path / "broken.zip", b"PK\x03\x04 truncated"), "byte")


# ---------------------------------------------------------------- streams and carried state


def test_streams_are_contiguous_and_reset_on_schedule():
    ids = np.arange(1, 1 + 4 * 30 + 1)
    data = TextStreams(ids, batch_size=4, seq_length=5, reset_every=3, steps_per_epoch=4)
    (x0, r0), y0 = data[0]
    (x1, r1), y1 = data[1]
    assert x0.shape == (4, 5) and np.array_equal(y0, x0 + 1)
    assert np.array_equal(x1[:, 0], x0[:, -1] + 1)  # batch 1 continues batch 0 in every stream
    assert r0.all() and not r1.any()
    assert data[3][0][1].all()  # position 3: reset every 3 sequences
    data.on_epoch_end()  # the next epoch continues at position 4, wrapping after the 6 of a pass
    assert np.array_equal(data[0][0][0], x0 + 4 * 5)
    assert data.position(2) == 0 and data[2][0][1].all()


def tiny_model(vocab_size=12, units=8, layers=2, **kwargs):
    keras.utils.set_random_seed(1)
    vocab = Vocabulary([chr(97 + i) for i in range(vocab_size - 1)], "char")
    model = LanguageModel(vocab, units=units, num_layers=layers, **kwargs)
    model.build()
    return model


def test_two_half_batches_with_carried_state_equal_one_whole():
    model = tiny_model()
    ids = np.random.default_rng(0).integers(1, 12, (3, 41)).astype(np.int32)
    whole = model(ids[:, :40])
    logits_whole = keras.ops.convert_to_numpy(keras.losses.sparse_categorical_crossentropy(ids[:, 1:], whole, from_logits=True))
    carried = CarriedState(model, batch_size=3)
    carried.build()
    first = carried((ids[:, :20], np.ones((3, 1), np.float32)), training=True)
    second = carried((ids[:, 20:40], np.zeros((3, 1), np.float32)), training=True)
    halves = np.concatenate([keras.ops.convert_to_numpy(x) for x in (first, second)], axis=1)
    np.testing.assert_allclose(halves, keras.ops.convert_to_numpy(whole), atol=1e-5)
    loss_halves = keras.ops.convert_to_numpy(
        keras.losses.sparse_categorical_crossentropy(ids[:, 1:], halves, from_logits=True)
    )
    np.testing.assert_allclose(loss_halves.mean(), logits_whole.mean(), atol=1e-6)
    # A reset flag starts the stream afresh: the same as a model without history.
    again = carried((ids[:, 20:40], np.ones((3, 1), np.float32)), training=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again), keras.ops.convert_to_numpy(model(ids[:, 20:40])), atol=1e-5)


def test_weight_noise_only_while_training():
    model = tiny_model(weight_noise=0.075)
    ids = np.ones((2, 7), np.int32)
    clean = keras.ops.convert_to_numpy(model(ids))
    np.testing.assert_allclose(clean, keras.ops.convert_to_numpy(model(ids)))
    noisy = keras.ops.convert_to_numpy(model(ids, training=True))
    assert np.abs(noisy - clean).max() > 1e-3


def test_adaptive_noise_description_length_matches_a_numpy_reference():
    model = tiny_model(adaptive_noise=True, train_symbols=1000)
    means = [keras.ops.convert_to_numpy(w) for w in model.noisy_variables()]
    sigmas = [np.exp(keras.ops.convert_to_numpy(s)) for s in model.log_sigma]
    mu = np.concatenate([m.ravel() for m in means]).astype(np.float64)
    sg = np.concatenate([s.ravel() for s in sigmas]).astype(np.float64)
    mu_p, var_p = mu.mean(), np.mean(sg**2 + (mu - mu.mean()) ** 2)
    kl = np.sum(np.log(np.sqrt(var_p) / sg) + (sg**2 + (mu - mu_p) ** 2) / (2 * var_p) - 0.5)
    ours = float(keras.ops.convert_to_numpy(LanguageModel.description_length(means, sigmas)))
    assert ours == pytest.approx(kl, rel=1e-4)
    model(np.ones((2, 5), np.int32), training=True)
    assert float(keras.ops.convert_to_numpy(model.losses[-1])) == pytest.approx(kl / 1000, rel=1e-4)


def test_text_lstm_clip_bounds_each_sequences_derivative_at_one(monkeypatch):
    """Graves sec. 3.1 clips the derivatives of a sequence's log-loss (eq. 13, summed over its
    symbols) at the LSTM gate inputs to [-1, 1]. The training loss is the per-symbol mean over
    B x T symbols, so in its units the bound is 1 / (B T), not 1 / B (a clip at +-T per sequence)."""
    import tensorflow as tf

    from zoo.layers import gradient_clip, lstm_stack

    seen = []

    def spy(x, limit):  # records the derivative that reaches the gate pre-activations, after the clip
        @tf.custom_gradient
        def record(x):
            def grad(upstream):
                seen.append(upstream.numpy())
                return upstream

            return tf.identity(x), grad

        return gradient_clip.clip_gradient(record(x), limit)

    monkeypatch.setattr(lstm_stack, "clip_gradient", spy)
    b, t = 2, 200
    ids = np.random.default_rng(0).integers(1, 12, (b, t + 1)).astype(np.int32)

    def per_sequence_gate_derivatives(clip):
        model = tiny_model(units=4, layers=1, lstm_clip=clip)
        model.output_kernel.assign(model.output_kernel * 30)  # large derivatives
        seen.clear()
        with tf.GradientTape() as tape:
            logits = model(ids[:, :-1], training=True)
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(ids[:, 1:], logits)
        grads = tape.gradient(loss, model.trainable_variables)
        assert all(np.isfinite(g.numpy()).all() for g in grads)
        assert len(seen) == 2 * t  # two clipped gate groups per step
        return np.concatenate([s.reshape(b, -1) for s in seen], axis=1) * b * t, float(loss)

    unclipped, loss_unclipped = per_sequence_gate_derivatives(1e9)
    clipped, loss_clipped = per_sequence_gate_derivatives(1.0)
    assert 2 < np.abs(unclipped).max() < t  # a per-sequence bound of T would not clip them
    assert np.abs(clipped).max() == pytest.approx(1.0, abs=1e-4)
    assert np.mean(np.abs(clipped) > 0.999) > 0.05  # the bound is reached, often
    assert loss_clipped == loss_unclipped  # the clip leaves the reported per-symbol loss alone


# ---------------------------------------------------------------- training, evaluation, sampling


def trained_on_pattern(steps=60):
    model = tiny_model(vocab_size=5, units=16, layers=1)
    wrapper = CarriedState(model, batch_size=4)
    wrapper.build()
    wrapper.compile(optimizer=keras.optimizers.Adam(0.03), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ids = np.tile(np.array([1, 2, 3, 4, 2, 3], np.int32), 400)
    history = wrapper.fit(TextStreams(ids, 4, 20, steps_per_epoch=steps), epochs=1, verbose=0)
    return model, ids, history.history["loss"][0]


def test_model_learns_a_pattern_and_static_bpc_is_low():
    model, ids, _ = trained_on_pattern()
    result = evaluate_text(model, ids[:600], seq_length=50)
    assert result["symbols"] == 599
    # After "4" comes "2" then "3"; only "3"->(4 or 1) is uncertain: ~1/3 bit per symbol at best.
    assert result["bpc_static"] < 0.8


def test_dynamic_evaluation_adapts_and_leaves_the_model_alone():
    model = tiny_model(vocab_size=5, units=16, layers=1)
    before = [w.copy() for w in model.get_weights()]
    ids = np.tile(np.array([1, 2, 3, 4], np.int32), 300)
    static = evaluate_text(model, ids, seq_length=40)
    dynamic = evaluate_text(model, ids, seq_length=40, dynamic=True, learning_rate=1.0)
    assert dynamic["bpc_dynamic"] < static["bpc_static"] - 0.3  # it learns the text while reading it
    assert static["bpc_static"] == pytest.approx(math.log2(5), abs=0.3)  # untrained: about uniform
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_word_model_reports_perplexity():
    vocab = Vocabulary.build(["a", "b", "c", "<eos>"], "word")
    model = LanguageModel(vocab, units=4, num_layers=1)
    model.build()
    result = evaluate_text(model, vocab.encode(["a", "b", "c", "<eos>"] * 10), seq_length=7)
    assert result["perplexity_static"] == pytest.approx(2 ** result["bits_per_word_static"], rel=1e-6)


def test_inverse_cdf_draw_follows_the_softmax():
    logits = np.log(np.array([[0.1, 0.2, 0.3, 0.4]], np.float32))
    u = np.random.default_rng(0).random(20000).astype(np.float32)
    picks = keras.ops.convert_to_numpy(pick_symbol(np.repeat(logits, len(u), 0), u, 1.0))
    freq = np.bincount(picks, minlength=4) / len(u)
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.015)
    cold = keras.ops.convert_to_numpy(pick_symbol(np.repeat(logits, 100, 0), u[:100], 0.01))
    assert (cold == 3).all()


def test_sampling_is_seeded_streams_and_continues_a_pattern():
    model, _, _ = trained_on_pattern()
    vocab_text = "".join(model.vocabulary.symbols)
    a = "".join(sample_text(model, prime="abcd", length=30, temperature=0.3, seed=1))
    b = "".join(sample_text(model, prime="abcd", length=30, temperature=0.3, seed=1))
    assert a == b and len(a) == 30 and set(a) <= set(vocab_text)
    assert "bcdbc" in "abcd" + a  # ids 1,2,3,4,2,3 are a,b,c,d,b,c
    with pytest.raises(ValueError, match="temperature"):
        next(sample_text(model, temperature=0))


@pytest.mark.skipif(not DATA, reason="set ZOO_DATA_DIR to the folder holding ptb/")
def test_real_ptb_files_read_with_their_sizes():
    chars = read_corpus(os.path.join(DATA, "ptb", "ptb.char.test.txt"), "char")
    words = read_corpus(os.path.join(DATA, "ptb", "ptb.test.txt"), "word")
    assert len(words) == 82430  # Mikolov's PTB test set: 82,430 words with <eos>
    assert chars.count("\n") == words.count("<eos>") == 3761
    # Spaces restored exactly: every line is its sentence's words joined by single spaces.
    sentences = " ".join(words).split(" <eos>")[:-1]
    assert chars.splitlines() == [s.strip() for s in sentences] and "_" not in chars
    assert len(Vocabulary.build(read_corpus(os.path.join(DATA, "ptb", "ptb.valid.txt"), "word"), "word")) <= 10001


# ---------------------------------------------------------------- command line


def test_cli_train_evaluate_sample_a_text_model(tmp_path):
    import json

    from test_cli import assert_clean, zoo

    text = "the cat sat on the mat.\nthe dog sat on the log.\n" * 60
    counts = np.array(list(collections.Counter(text).values()), float)
    unigram_bits = float(-np.sum(counts / len(text) * np.log2(counts / len(text))))  # 3.52 bits per character
    train = write(tmp_path / "train.txt", text.encode())
    out = tmp_path / "run"
    help_text = zoo("train", "--help")
    assert "ptb-char" in help_text.stdout and "enwik8" in help_text.stdout
    proc = zoo(
        "train", "char-small", "--train-file", train, "--units", "16", "--batch-size", "4", "--seq-length", "20",
        "--steps-per-epoch", "10", "--epochs", "2", "--learning-rate", "0.03", "--out", str(out),
    )
    assert_clean(proc)
    result = json.loads(proc.stdout)
    # It learned the text's structure, not just its character frequencies (~1.6 bits here).
    assert result["epochs"] == 2 and result["bpc_static"] < unigram_bits - 1.0
    preset = str(out / "preset")
    meta = json.load(open(os.path.join(preset, "metadata.json")))
    assert meta["config"] == "char-small" and meta["train_symbols"] == int(len(text) * 0.95)
    proc = zoo("evaluate", "--model", preset, "--text-file", train, "--dynamic", "--quiet")
    assert_clean(proc)
    scores = json.loads(proc.stdout)
    assert {"bpc_static", "bpc_dynamic"} <= set(scores) and scores["symbols"] == len(text)
    proc = zoo("sample", "--model", preset, "--prime", "the ", "--length", "40", "--seed", "3")
    assert_clean(proc)
    assert proc.stdout.startswith("the ") and len(proc.stdout) == 4 + 40 + 1
    # Resuming a finished run trains nothing more and gives the same preset.
    proc = zoo("train", "char-small", "--train-file", train, "--units", "16", "--batch-size", "4", "--seq-length", "20",
               "--steps-per-epoch", "10", "--epochs", "2", "--learning-rate", "0.03", "--out", str(out))
    assert_clean(proc)
    assert "resuming" in proc.stderr and json.loads(proc.stdout)["epochs"] == 2


def test_cli_enwik8_config_uses_graves_split(tmp_path, monkeypatch, capsys):
    """`train enwik8` without --valid-file: first 96M bytes train, the next (last) 4M validate
    (Graves sec. 3.2), here scaled down to 960 / 40 bytes."""
    import json

    from zoo import cli
    from zoo.data import text

    monkeypatch.setattr(text, "SPLITS", {**text.SPLITS, "enwik8": (960, 1000)})
    rng = np.random.default_rng(0)
    data = bytes(rng.integers(97, 123, 1000).astype(np.uint8))
    corpus = write(tmp_path / "enwik8", data)
    common = ["--units", "4", "--layers", "1", "--batch-size", "2", "--seq-length", "10", "--steps-per-epoch", "1", "--epochs", "1"]
    cli.cmd_train_text(cli.build_parser().parse_args(["train", "enwik8", "--train-file", corpus, *common, "--out", str(tmp_path / "run")]))
    result = json.loads(capsys.readouterr().out)
    meta = json.load(open(os.path.join(result["preset"], "metadata.json")))
    assert meta["train_symbols"] == 960 and result["symbols"] == 40 - 1  # bytes 960..999 validate
    assert "enwik8 split" in meta["valid_file"]
    # A file too short for the split is refused with the fix, not split some other way.
    short = write(tmp_path / "short", data[:990])
    with pytest.raises(SystemExit):
        cli.cmd_train_text(cli.build_parser().parse_args(["train", "enwik8", "--train-file", short, *common, "--out", str(tmp_path / "r2")]))
    assert "--valid-file" in capsys.readouterr().err


def test_cli_text_errors_name_the_fix(tmp_path):
    from test_cli import zoo

    proc = zoo("train", "char-small", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and "--train-file" in proc.stderr
    bad = write(tmp_path / "bad.txt", "caf\xe9".encode("latin-1"))
    proc = zoo("train", "char-small", "--train-file", bad, "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and "--level byte" in proc.stderr and "Traceback" not in proc.stderr
    proc = zoo("evaluate", "--model", "iam-prediction", "--text-file", bad)
    assert proc.returncode == 2 and "handwriting model" in proc.stderr
