"""The handwriting recognizer (issue 12): CTC loss, decoding, error rates, learning, reading files, export."""

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from conftest import REPO
from zoo.data.alphabet import Alphabet
from zoo.data.pipeline import RecognitionBatches
from zoo.models import HandwritingRecognizer, HandwritingSynthesizer
from zoo.presets import from_preset, save_preset
from zoo.reading import beam_decode, edit_distance, error_rates, errors_by_class, greedy_decode, missed_characters, read
from zoo.render.svg import read_svg_offsets
from zoo.sampling.engines import KerasEngine, engine_for
from zoo.sampling.handwriting import write

ENV = {**os.environ, "PYTHONPATH": REPO}


def reference_ctc_nll(logits, labels):
    """-log Pr(labels | logits) by the CTC forward recursion (Graves et al. 2006), in float64, blank = 0."""
    logp = logits - logits.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    ext = [0]
    for k in labels:
        ext += [k, 0]
    alpha = np.full(len(ext), -np.inf)
    alpha[0] = logp[0, 0]
    if len(ext) > 1:
        alpha[1] = logp[0, ext[1]]
    for t in range(1, len(logits)):
        new = np.full(len(ext), -np.inf)
        for s, k in enumerate(ext):
            terms = [alpha[s]] + ([alpha[s - 1]] if s >= 1 else [])
            if s >= 2 and k != 0 and ext[s - 2] != k:
                terms.append(alpha[s - 2])
            new[s] = np.logaddexp.reduce(terms) + logp[t, k]
        alpha = new
    return -np.logaddexp(alpha[-1], alpha[-2] if len(ext) > 1 else -np.inf)


def tiny_recognizer(alphabet, **kw):
    keras.utils.set_random_seed(0)
    m = HandwritingRecognizer(alphabet, units=kw.pop("units", 12), num_layers=kw.pop("num_layers", 1), filters=kw.pop("filters", 8), **kw)
    m.build()
    return m


def test_ctc_loss_matches_a_numpy_reference_with_each_lines_own_lengths():
    rng = np.random.default_rng(0)
    model = tiny_recognizer(Alphabet("abcd"))
    points = np.array([40, 23, 17])  # 10, 6 and 5 frames
    frames = model.frame_lengths(points)
    assert list(frames) == [10, 6, 5]
    logits = rng.normal(size=(3, 10, 5)).astype("float32") * 2
    labels = [[1, 2, 2, 3], [4, 1], [3, 3]]  # a repeated label needs a blank between: 5 frames are enough for [3, 3]
    y = np.zeros((3, 8), np.int32)
    for b, lab in enumerate(labels):
        y[b, : len(lab)] = lab
    x = (np.zeros((3, 40, 3), np.float32), points)
    got = float(model.compute_loss(x, y, logits))
    want = np.mean([reference_ctc_nll(logits[b, : frames[b]].astype(np.float64), labels[b]) for b in range(3)])
    assert got == pytest.approx(want, abs=1e-4)
    # Frames past a line's end do not count: changing them changes nothing.
    changed = logits.copy()
    changed[1, 6:] += 5.0
    assert float(model.compute_loss(x, y, changed)) == pytest.approx(got, abs=1e-4)


def test_greedy_and_beam_decoding_on_hand_made_logits():
    def logits_of(probs):
        return np.log(np.asarray(probs, np.float64) + 1e-12)

    # Best path: a a _ b b _ a -> "aba"; repeats merge, a blank separates a repeated label.
    path = [1, 1, 0, 2, 2, 0, 1, 1]
    assert greedy_decode(np.eye(3)[path] * 5.0, 8) == [1, 2, 1]
    assert greedy_decode(np.eye(3)[path] * 5.0, 4) == [1, 2]  # only the line's own frames
    assert greedy_decode(np.eye(3)[[1, 0, 1]] * 5.0, 3) == [1, 1]
    # Each frame's best class is blank (0.6), but "a" summed over its alignments is likelier:
    # Pr("") = 0.36, Pr("a") = 0.4 * 0.6 * 2 + 0.4 * 0.4 = 0.64.
    logits = logits_of([[0.6, 0.4, 0.0], [0.6, 0.4, 0.0]])
    assert greedy_decode(logits, 2) == []
    assert beam_decode(logits, 2, beam_width=4) == [1]
    assert beam_decode(np.eye(3)[path] * 5.0, 8, beam_width=4) == [1, 2, 1]


def test_missed_characters_follow_a_minimal_alignment_and_classes_add_up():
    assert missed_characters("Hello", "hello") == [True, False, False, False, False]  # a substitution
    assert missed_characters("abc", "ac") == [False, True, False]  # a deletion
    assert missed_characters("abc", "aXbc") == [False, False, False]  # an insertion misses nothing
    assert missed_characters("abc", "") == [True] * 3 and missed_characters("", "xyz") == []
    rng = np.random.default_rng(0)
    refs = ["".join(rng.choice(list("aB1. "), rng.integers(0, 9))) for _ in range(200)]
    hyps = ["".join(rng.choice(list("aB1. "), rng.integers(0, 9))) for _ in range(200)]
    by_class = errors_by_class(refs, hyps)
    # Misses plus insertions are the edit distances: the CER's numerator, split.
    missed = sum(sum(missed_characters(r, h)) for r, h in zip(refs, hyps))
    assert missed + by_class["inserted"]["missed"] == sum(edit_distance(r, h) for r, h in zip(refs, hyps))
    # Every character is in exactly one of capital, digit, punctuation, lowercase, space.
    exclusive = ("capital", "digit", "punctuation", "lowercase", "space")
    assert sum(by_class[c]["characters"] for c in exclusive) == sum(map(len, refs)) == by_class["inserted"]["characters"]
    assert sum(by_class[c]["missed"] for c in exclusive) == missed
    assert by_class["first of line"]["characters"] == sum(1 for r in refs if r)
    line = errors_by_class(["Hello World 3."], ["hello Warld 8,x"])
    assert line["first of line"]["rate"] == 1.0 and line["capital"]["rate"] == 0.5 and line["digit"]["missed"] == 1
    assert line["lowercase"]["missed"] == 1 and line["space"]["missed"] == 0 and line["inserted"]["missed"] == 1


def test_edit_distance_and_error_rates_are_summed_over_lines():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "abc") == 0
    assert edit_distance("a b c".split(), "a c".split()) == 1
    rates = error_rates(["abcd", "a" * 96], ["abce", "a" * 96])
    assert rates["cer"] == pytest.approx(1 / 100)  # not the mean of per-line rates (0.125)
    assert rates["wer"] == pytest.approx(1 / 2) and rates["lines"] == 2 and rates["lines_cer_over_0.5"] == 0
    assert error_rates(["abc"], ["xyzw"])["lines_cer_over_0.5"] == 1
    with pytest.raises(ValueError, match="as many"):
        error_rates(["a"], [])


def test_cer_intervals_and_paired_differences_tell_writers_apart_only_when_they_differ():
    from zoo.reading import cer_interval, compare_legibility, paired_cer_difference

    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 60, 300)
    a = rng.binomial(lengths, 0.05)  # a writer at ~5% CER
    lo, hi = cer_interval(a, lengths)
    assert lo < a.sum() / lengths.sum() < hi and 0.003 < hi - lo < 0.03  # about +-0.5 points for 300 lines
    assert cer_interval(a, lengths) == [lo, hi]  # a fixed seed: the same interval every time
    same = paired_cer_difference(a, a, lengths)
    assert same["difference"] == 0 and same["ci95"] == [0.0, 0.0]
    noisy = paired_cer_difference(a, rng.binomial(lengths, 0.05), lengths)  # as good, other noise
    assert noisy["ci95"][0] < 0 < noisy["ci95"][1]
    worse = paired_cer_difference(rng.binomial(lengths, 0.08), a, lengths)
    assert 0 < worse["ci95"][0] < worse["difference"] < worse["ci95"][1]
    with pytest.raises(ValueError, match="same lines"):
        paired_cer_difference(a, a[:10], lengths)

    texts = ["abcd efg", "hij kl"]
    this, that = error_rates(texts, ["abcd efg", "hij kx"]), error_rates(texts, ["abxd efg", "hix kx"])
    assert this["line_char_edits"] == [0, 1] and this["line_chars"] == [8, 6]
    diff = compare_legibility({"t, bias 1": this, "only here": this}, {"t, bias 1": that})
    assert list(diff) == ["t, bias 1"] and diff["t, bias 1"]["difference"] == pytest.approx((1 - 3) / 14)
    with pytest.raises(ValueError, match="different texts"):
        compare_legibility({"t": this}, {"t": error_rates(["abc"], ["abc"])})


def test_a_line_reads_the_same_alone_or_in_any_batch():
    model = tiny_recognizer(Alphabet("ab"), num_layers=2)
    x = np.random.default_rng(1).normal(size=(2, 64, 3)).astype("float32")  # the padding of line 1 is not zero
    together = ops.convert_to_numpy(model((x, np.array([64, 37]))))
    alone = ops.convert_to_numpy(model((x[1:, :37], np.array([37]))))
    np.testing.assert_allclose(together[1, :10], alone[0], atol=1e-5)


SHAPES = {"a": "loop", "b": "bar", "c": "zig"}


def glyph(kind, rng):
    """Pen offsets of one synthetic character: a loop, a vertical bar or a zigzag, then the pen lifts."""
    n = int(rng.integers(14, 20))
    i = np.arange(n) / (n - 1)
    if kind == "loop":
        x, y = 20 * np.cos(2 * np.pi * i), 20 * np.sin(2 * np.pi * i)
    elif kind == "bar":
        x, y = 2 * i, -40 * i
    else:
        x, y = 30 * i, 15 * np.sign(np.sin(6 * np.pi * i))
    pts = np.stack([x, y], 1) + rng.normal(0, 1.0, (n, 2))
    off = np.concatenate([[[0.0, 0.0]], np.diff(pts, axis=0)])
    off = np.concatenate([off, np.zeros((n, 1))], 1)
    off[0, :2] = [25.0, 0.0]  # move right to the next character
    off[-1, 2] = 1.0
    return off


def synthetic_lines(count, rng):
    texts, lines = [], []
    for _ in range(count):
        text = "".join(rng.choice(list(SHAPES), int(rng.integers(2, 5))))
        texts.append(text)
        lines.append(np.concatenate([np.zeros((1, 3))] + [glyph(SHAPES[c], rng) for c in text]).astype("float32"))
    return lines, texts


def test_the_recognizer_learns_to_read_a_tiny_alphabet_of_strokes():
    rng = np.random.default_rng(0)
    alphabet = Alphabet("abc")
    train_lines, train_texts = synthetic_lines(192, rng)
    test_lines, test_texts = synthetic_lines(48, rng)
    model = tiny_recognizer(alphabet, units=24, filters=16, offset_std=(15.0, 15.0))
    model.compile(optimizer=keras.optimizers.Adam(0.01, clipnorm=10.0))
    data = RecognitionBatches([model.normalize(ln) for ln in train_lines], [alphabet.encode(t) for t in train_texts], batch_size=16, seed=0)
    before = error_rates(test_texts, read(model, [ln[1:] for ln in test_lines], backend="keras"))["cer"]
    from zoo import backend

    model.fit(backend.fit_data(data, repeat=True), steps_per_epoch=len(data), epochs=12, verbose=0)
    after = error_rates(test_texts, read(model, [ln[1:] for ln in test_lines], backend="keras"))["cer"]
    assert before > 0.5 and after < 0.1, (before, after)


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    """A tiny synthesis preset and a tiny recognizer preset over the same alphabet; the recognizer exported."""
    root = tmp_path_factory.mktemp("reading")
    alphabet = Alphabet.from_texts(["Hello world, the quick brown fox"])
    keras.utils.set_random_seed(1)
    writer = HandwritingSynthesizer(alphabet, units=12, num_layers=1, num_mixtures=2, window_components=2, offset_mean=(4.0, 0.0), offset_std=(10.0, 10.0))
    writer.build()
    writer_dir, rec_dir = str(root / "writer"), str(root / "reader")
    save_preset(writer, writer_dir, {"model": "HandwritingSynthesizer"})
    save_preset(tiny_recognizer(alphabet, offset_std=(10.0, 10.0)), rec_dir, {"model": "HandwritingRecognizer", "evaluation": {"cer": 0.5}})
    from export import export_model

    export_model(rec_dir, rec_dir, formats=("onnx",))
    return {"writer": writer_dir, "reader": rec_dir, "root": root}


def test_onnx_logits_and_reading_match_keras(presets):
    from export import runtime

    model, ort = from_preset(presets["reader"]), runtime.load(presets["reader"])
    assert not isinstance(engine_for(model), KerasEngine)  # a current export: onnxruntime reads
    x = np.random.default_rng(2).normal(size=(2, 96, 3)).astype("float32")
    lengths = np.array([96, 50], np.int32)
    (a, fa), (b, fb) = KerasEngine(model).recognize(x, lengths), ort.recognize(x, lengths)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert list(fa) == list(fb) == [24, 13]
    lines = [np.random.default_rng(k).normal(0, 10, (60 + 10 * k, 3)).astype("float32") for k in range(3)]
    assert read(model, lines, backend="keras") == read(model, lines) == ort.read(lines)


def test_zoo_read_reads_back_what_zoo_write_wrote(presets):
    out = str(presets["root"] / "hello.svg")
    proc = subprocess.run(
        [sys.executable, "-m", "zoo", "write", "Hello world", "the quick fox", "--model", presets["writer"], "--out", out, "--width", "20"],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    stored = read_svg_offsets(out)
    written = write(from_preset(presets["writer"]), ["Hello world", "the quick fox"])
    assert [len(s) for s in stored] == [len(w) for w in written]
    assert all(np.abs(s - w).max() <= 0.005 for s, w in zip(stored, written))  # stored to 0.01 tablet units
    proc = subprocess.run([sys.executable, "-m", "zoo", "read", out, "--model", presets["reader"]], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:-1] == read(from_preset(presets["reader"]), stored)
    npy = str(presets["root"] / "line.npy")
    np.save(npy, stored[0])
    proc = subprocess.run([sys.executable, "-m", "zoo", "read", npy, "--model", presets["reader"]], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.split("\n")[:-1] == read(from_preset(presets["reader"]), stored[:1])


def test_zoo_read_errors_name_the_problem(presets, tmp_path):
    def zoo_read(*args):
        return subprocess.run([sys.executable, "-m", "zoo", "read", *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)

    plain = tmp_path / "plain.svg"
    plain.write_text('<svg xmlns="http://www.w3.org/2000/svg"><polyline points="0,0 1,1"/></svg>')
    broken = tmp_path / "broken.svg"
    broken.write_text("<svg")
    picture = tmp_path / "x.png"
    picture.write_bytes(b"\x89PNG")
    cases = [
        ((str(tmp_path / "missing.svg"), "--model", presets["reader"]), "no file"),
        ((str(plain), "--model", presets["reader"]), "carries no pen offsets"),
        ((str(broken), "--model", presets["reader"]), "not a readable SVG"),
        ((str(picture), "--model", presets["reader"]), "is a picture"),
        ((str(plain), "--model", str(tmp_path / "no-such-preset")), "train recognizer"),
        ((str(plain), "--model", presets["writer"]), "carries no pen offsets"),
    ]
    for args, message in cases:
        proc = zoo_read(*args)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
    np.save(tmp_path / "line.npy", np.zeros((5, 3), np.float32))
    proc = zoo_read(str(tmp_path / "line.npy"), "--model", presets["writer"])
    assert proc.returncode == 2 and "is not a recognizer" in proc.stderr


def test_legibility_of_a_synthesis_model_is_measured_by_reading_it_back(presets, tmp_path):
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("Hello world\n\nthe quick brown fox\nthe fox\n")
    proc = subprocess.run(
        [sys.executable, "-m", "zoo", "evaluate", "--model", presets["writer"], "--text-file", str(sentences), "--recognizer", presets["reader"], "--bias", "0.5", "--seed", "3"],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["lines"] == 3 and result["bias"] == 0.5 and result["real_cer"] == 0.5 and result["characters"] == 11 + 19 + 7
    assert 0.0 <= result["cer"] and math.isfinite(result["wer"]) and "cer" in result["control_shuffled_words"]
    assert [e["asked"] for e in result["examples"]] == ["Hello world", "the quick brown fox", "the fox"]


def test_augmented_batches_distort_each_line_anew_every_pass_and_keep_its_pen_and_text():
    rng = np.random.default_rng(3)
    lines, texts = synthetic_lines(8, rng)
    ids = [Alphabet("abc").encode(t) for t in texts]
    plain = RecognitionBatches(lines, ids, batch_size=8, shuffle=False)
    augmented = RecognitionBatches(lines, ids, batch_size=8, shuffle=False, augment=True)
    (x0, n0), y0 = plain[0]
    (x1, n1), y1 = augmented[0]
    again = augmented[0][0][0]
    augmented.on_epoch_end()
    (x2, _), _ = augmented[0]
    assert np.array_equal(n0, n1) and np.array_equal(y0, y1)  # lengths and labels untouched
    np.testing.assert_array_equal(x1[..., 2], x0[..., 2])  # pen lifts untouched
    np.testing.assert_array_equal(again, x1)  # the same pass draws the same distortion (resumable)
    assert not np.allclose(x1[..., :2], x0[..., :2]) and not np.allclose(x2[..., :2], x1[..., :2])
    # A distortion is an affine map of the offsets: path lengths change by the map's scale, at most x1.25 x1.15 x ~1.1.
    ratio = np.linalg.norm(x1[..., :2], axis=-1).sum() / np.linalg.norm(x0[..., :2], axis=-1).sum()
    assert 0.6 < ratio < 1.7


def test_bad_arguments_to_read_and_write_name_the_problem(presets, tmp_path):
    reader, writer = from_preset(presets["reader"]), from_preset(presets["writer"])
    lines = [np.zeros((20, 3), np.float32)]
    with pytest.raises(ValueError, match="beam width must be >= 0"):
        read(reader, lines, beam_width=-1)
    with pytest.raises(ValueError, match="is not a recognizer"):
        read(writer, lines)
    with pytest.raises(ValueError, match="cannot write text"):
        write(reader, ["Hello"])
    for args, message in ((["read", "x.svg", "--beam", "-1"], "not a beam width"),
                          (["write", "Hello", "--rewrites", "-1", "--out", str(tmp_path / "x.svg")], "not a count of rewrites"),
                          (["write", "Hello", "--model", presets["reader"], "--out", str(tmp_path / "x.svg")], "`write` needs a synthesis preset")):
        proc = subprocess.run([sys.executable, "-m", "zoo", *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
