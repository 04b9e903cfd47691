"""The presets in saved_models/ load, sample, and still score what was measured when their figures were recorded.

`zoo evaluate ... --record` stores, beside each figure, the score of a small
fixed subset (the first 16 lines of the split, the first 2,000 symbols of the
text) computed by the same code (zoo.model_card). Here that subset is read
again from the data in $ZOO_DATA_DIR, through the reader and the repairs, and
scored again: a change to the weights, the model code, the reader or the
repairs shows up as a different number.
"""

import functools
import json
import os

import numpy as np
import pytest

from zoo.render.svg import read_svg_offsets

from conftest import real_data_dir, requires_data
from zoo import model_card
from zoo.presets import default_style, from_preset, list_presets, load_metadata, preset_path
from zoo.sampling.handwriting import sample_unconditional

HANDWRITING = ("iam-prediction", "iam-synthesis", "iam-synthesis-small")
TEXT = ("ptb-char-small",)
RECOGNIZER = ("iam-recognizer",)
RELATIVE = 1e-3  # float32 sums over ~8,000 points agree to ~1e-6 between runs


def _checks(names):
    """(preset, evaluation key) of every recorded evaluation that carries a check."""
    out = []
    for name in names:
        for key, entry in load_metadata(name).get("evaluations", {}).items():
            if "check" in entry:
                out.append((name, key))
    return out


def test_shipped_presets_carry_recorded_checks():
    assert set(HANDWRITING + TEXT) <= set(list_presets())
    for name in HANDWRITING:
        evs = load_metadata(name)["evaluations"]
        # testset_v both ways: the lines as trained (repaired) and as recorded.
        assert {(e["split"], e["repaired"]) for e in evs.values()} >= {("testset_v", True), ("testset_v", False)}
        for e in evs.values():
            assert e["check"]["lines"] == model_card.CHECK_LINES == len(e["check"]["line_ids"])
            assert e["lines"] == 1438 and e["nll_nats_per_line"] < 0
    for name in TEXT:
        assert any(e["check"]["symbols"] == model_card.CHECK_CHARACTERS for e in load_metadata(name)["evaluations"].values())
    synthesis_chars = json.load(open(os.path.join(preset_path("iam-synthesis"), "config.json")))["config"]["alphabet"]["chars"]
    for name in RECOGNIZER:
        with open(os.path.join(preset_path(name), "config.json")) as f:
            assert json.load(f)["config"]["alphabet"]["chars"] == synthesis_chars  # it reads every character the writer writes
        meta = load_metadata(name)
        greedy = meta["evaluations"]["testset_v_greedy"]
        assert greedy["lines"] == 1438 and greedy["cer"] == pytest.approx(meta["evaluation"]["cer"], abs=1e-9)
        assert greedy["check"]["lines"] == model_card.CHECK_LINES
    # The synthesis preset's legibility is measured by reading it back (bench/write_quality.py --record).
    legible = load_metadata("iam-synthesis")["legibility"]
    assert legible["recognizer"] == RECOGNIZER[0] and legible["recognizer_real_cer"] == load_metadata(RECOGNIZER[0])["evaluation"]["cer"]
    assert "write_quality" not in load_metadata("iam-synthesis")  # the counts once made by eye are gone
    # Each writer's default style is the one that read best on lines its report does not use.
    assert default_style("iam-synthesis") is None and default_style("iam-synthesis-small") == "a06-014-05"
    assert load_metadata("iam-synthesis")["legibility"]["against"]["preset"] == "iam-synthesis-small"


@pytest.mark.parametrize("name", HANDWRITING + TEXT + RECOGNIZER)
def test_cards_are_written_from_the_metadata(name):
    """README.md is what zoo.model_card writes from metadata.json: no figure on it was typed by hand."""
    folder = preset_path(name)
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)["config"]
    with open(os.path.join(folder, "README.md")) as f:
        assert f.read() == model_card.card(name, config, load_metadata(name)), "run `python -m zoo.model_card`"


@functools.lru_cache(maxsize=None)
def _lines(line_ids, repair):
    return model_card.read_check_lines(real_data_dir(), list(line_ids), repair=repair)


@functools.lru_cache(maxsize=None)
def _model(name):
    return from_preset(name)


@requires_data
@pytest.mark.parametrize("name,key", _checks(HANDWRITING))
def test_handwriting_preset_scores_its_recorded_subset(name, key):
    entry = load_metadata(name)["evaluations"][key]
    check = entry["check"]
    lines, texts = _lines(tuple(check["line_ids"]), entry["repaired"])
    got = model_card.handwriting_check(_model(name), lines, texts, check["line_ids"])
    assert got["points"] == check["points"]
    assert got["nll_nats_per_line"] == pytest.approx(check["nll_nats_per_line"], rel=RELATIVE)


@requires_data
@pytest.mark.parametrize("name,key", _checks(RECOGNIZER))
def test_recognizer_reads_its_recorded_subset(name, key):
    entry = load_metadata(name)["evaluations"][key]
    check = entry["check"]
    lines, texts = _lines(tuple(check["line_ids"]), True)
    got = model_card.recognizer_check(_model(name), lines, texts, check["line_ids"])
    assert got["cer"] == pytest.approx(check["cer"], abs=0.005)
    assert sum(a != b for a, b in zip(got["read"], check["read"])) <= 1


def test_zoo_read_with_the_shipped_recognizer_runs_without_tensorflow(tmp_path):
    """`zoo read` of what `zoo write` wrote loads onnxruntime only, and reads it as the Keras recognizer does."""
    import subprocess
    import sys

    out = str(tmp_path / "hello.svg")
    run = subprocess.run([sys.executable, "-m", "zoo", "write", "Hello world", "--bias", "1", "--out", out], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    code = (
        "import sys; from zoo.cli import main; main(sys.argv[1:]); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'"
    )
    run = subprocess.run([sys.executable, "-c", code, "read", out], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    from zoo.reading import read

    assert run.stdout.splitlines() == read(_model("iam-recognizer"), read_svg_offsets(out), backend="keras")


def _text_dir():
    root = os.environ.get("ZOO_DATA_DIR")
    return os.path.join(root, "ptb") if root and os.path.isdir(os.path.join(root, "ptb")) else root


@pytest.mark.skipif(_text_dir() is None, reason="set ZOO_DATA_DIR to the folder holding ptb/")
@pytest.mark.parametrize("name,key", _checks(TEXT))
def test_text_preset_scores_its_recorded_subset(name, key):
    from zoo.data.text import read_corpus

    entry = load_metadata(name)["evaluations"][key]
    model = _model(name)
    corpus = read_corpus(os.path.join(_text_dir(), entry["text_file"]), model.vocabulary.level)
    got = model_card.text_check(model, corpus, entry["check"]["seq_length"])
    assert got["symbols"] == entry["check"]["symbols"]
    static = "bits_per_word_static" if model.vocabulary.level == "word" else "bpc_static"
    assert got[static] == pytest.approx(entry["check"][static], rel=RELATIVE)


def test_evaluate_record_writes_the_metadata_and_the_card(tmp_path):
    """`zoo evaluate --record` on a repaired and an unrepaired cache: both results and their checks land in
    metadata.json, every other entry stays as it was, the card shows both, and the check measures again the same."""
    import subprocess
    import sys

    from conftest import REPO, make_iam_folder
    from zoo.models.predictor import HandwritingPredictor
    from zoo.presets import save_preset

    data = make_iam_folder(str(tmp_path / "iam"))
    model = HandwritingPredictor(units=8, num_layers=2, num_mixtures=3, offset_mean=(4.0, 0.0), offset_std=(10.0, 10.0))
    model.build()
    preset = str(tmp_path / "tiny")
    keep = {"model": "HandwritingPredictor", "export": {"weights_sha256": "abc", "formats": ["onnx"]}}
    save_preset(model, preset, keep)
    env = {**os.environ, "PYTHONPATH": REPO}

    def zoo(*cmd):
        proc = subprocess.run([sys.executable, "-m", "zoo", *cmd], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr

    raw, repaired = str(tmp_path / "raw.npz"), str(tmp_path / "repaired.npz")
    zoo("prepare", "--data", data, "--out", raw, "--quiet", "--no-repair")
    zoo("evaluate", "--model", preset, "--data", raw, "--split", "testset_v", "--quiet", "--record")
    # The repaired cache through the same functions, in this process (a second TensorFlow start costs ~10 s).
    from zoo.data.cache import HandwritingSet, prepare
    from zoo.evaluation import evaluate_handwriting

    prepare(data, repaired, progress=False)
    cache = HandwritingSet.load(repaired)
    result = evaluate_handwriting(from_preset(preset), cache.lines("testset_v"), batch_size=32)
    model_card.record_handwriting_evaluation(preset, from_preset(preset), cache, "testset_v", result, repaired)
    meta = load_metadata(preset)
    assert {k: meta[k] for k in keep} == keep  # the export entry (and all else) kept exactly
    evs = meta["evaluations"]
    assert set(evs) == {"testset_v", "testset_v_not_repaired"}
    assert [evs[k]["repaired"] for k in sorted(evs)] == [True, False]
    card = open(os.path.join(preset, "README.md")).read()
    for e in evs.values():
        assert f"**{e['nll_nats_per_line']:.1f}**" in card
        lines, texts = model_card.read_check_lines(data, e["check"]["line_ids"], repair=e["repaired"])
        again = model_card.handwriting_check(from_preset(preset), lines, texts, e["check"]["line_ids"])
        assert again["nll_nats_per_line"] == pytest.approx(e["check"]["nll_nats_per_line"], rel=1e-5)
    assert e["check"]["lines"] == 3 == e["lines"]  # the split has 3 lines: the check takes what there is


def test_the_ledger_joins_the_legs_validation_curves_on_one_clock(tmp_path):
    """A preset trained in three legs (one recorded before legs kept their curve, one whose rate changed): the ledger puts each
    leg's points after the earlier legs' hours, the card names each leg's machine, and write_card draws
    training.png."""
    from zoo.models.predictor import HandwritingPredictor
    from zoo.presets import save_preset

    oldest = {"epochs": 4, "train_seconds": 7200.0, "learning_rate": 5e-4, "created": "a"}  # no machine, no curve
    assert model_card._leg_rates({"epochs": 3, "learning_rate": 1e-4, "history": [  # float32 noise, then a drop
        {"learning_rate": 5.0000002e-4}, {"learning_rate": 5e-4}, {"learning_rate": 1e-4}]}) == "2 at lr 0.0005 and 1 at lr 0.0001"
    assert model_card._leg_rates({"epochs": 3, "learning_rate": 1e-4, "history": [{"learning_rate": 5e-4}]}) == "3 at lr 0.0001"
    cpu = {"epochs": 2, "train_seconds": 1800.0, "learning_rate": 1e-4, "hardware": "2-core CPU", "batch_size": 32,
           "history": [{"epoch": 1, "val_loss": -900.0, "train_seconds": 900.0, "learning_rate": 3e-4},
                       {"epoch": 2, "val_loss": -910.0, "train_seconds": 1800.0, "learning_rate": 1e-4}],
           "initialized_from": oldest}  # its rate changed within the leg: the card names both
    meta = {"model": "HandwritingPredictor", "epochs": 2, "train_seconds": 360.0, "learning_rate": 1e-4, "hardware": "gpu H100",
            "batch_size": 128, "steps_per_epoch": 100, "initialized_from": {"preset": "/runs/cpu", **cpu},
            "history": [{"epoch": 1, "val_loss": -920.0, "train_seconds": 180.0}, {"epoch": 2, "val_loss": -930.0, "train_seconds": 360.0}]}
    legs = model_card.ledger(meta)
    assert [leg["epochs"] for leg in legs] == [4, 2, 2]
    assert legs[0]["hours"] == [] and legs[0]["label"].startswith("machine not recorded")
    assert legs[1]["hours"] == pytest.approx([2.25, 2.5]) and legs[2]["hours"] == pytest.approx([2.55, 2.6])
    assert legs[2]["val_loss"] == [-920.0, -930.0] and "gpu H100, batches of 128" in legs[2]["label"]

    model = HandwritingPredictor(units=8, num_layers=1, num_mixtures=3)
    model.build()
    preset = str(tmp_path / "legs")
    save_preset(model, preset, meta)
    card = open(model_card.write_card(preset)).read()
    assert "8 epochs in all, 2.6 h: 4 at lr 0.0005, then 1 at lr 0.0003 and 1 at lr 0.0001 (30.0 min, batches of 32 on 2-core CPU), then 2 at lr 0.0001 (6.0 min, batches of 128 on gpu H100)" in card
    assert "![validation NLL over the training legs](training.png)" in card
    with open(os.path.join(preset, model_card.LEDGER_FIGURE), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_text_check_is_recorded_and_measures_again(tmp_path):
    from zoo.data.text import Vocabulary
    from zoo.models.language import LanguageModel
    from zoo.presets import save_preset

    text = "the quick brown fox jumps over the lazy dog. " * 60
    model = LanguageModel(Vocabulary.build(text, "char"), units=8, num_layers=1)
    model.build()
    preset = str(tmp_path / "tiny-text")
    save_preset(model, preset, {"model": "LanguageModel"})
    path = tmp_path / "t.txt"
    path.write_text(text)
    model_card.record_text_evaluation(preset, model, str(path), text, {"symbols": len(text), "bpc_static": 4.0}, seq_length=50)
    entry = load_metadata(preset)["evaluations"]["t.txt"]
    assert entry["check"]["symbols"] == model_card.CHECK_CHARACTERS and entry["bpc_static"] == 4.0
    again = model_card.text_check(from_preset(preset), text, 50)
    assert again["bpc_static"] == pytest.approx(entry["check"]["bpc_static"], rel=1e-6)


def test_prediction_preset_samples():
    model = _model("iam-prediction")
    strokes = sample_unconditional(model, steps=200, count=2, seed=0)
    assert strokes.shape == (2, 200, 3) and np.all(np.isfinite(strokes))
    # Real handwriting moves right on average and lifts the pen now and then.
    assert strokes[..., 0].mean() > 0 and 0 < strokes[..., 2].mean() < 0.3


def test_synthesis_preset_is_shipped_and_writes():
    from zoo.sampling.handwriting import write

    model = _model("iam-synthesis")
    chars = model.alphabet.chars
    assert set("QXZ0123456789.,!?'\"-") <= set(chars) and set("abcxyzABC") <= set(chars)
    assert len(model.styles) >= 3
    offsets = write(model, ["Hello world"], bias=1.0, style=next(iter(model.styles)))
    assert len(offsets) == 1 and np.all(np.isfinite(offsets[0]))


def test_zoo_write_with_the_shipped_export_runs_without_tensorflow(tmp_path):
    """`zoo write` on a preset with a current ONNX export loads onnxruntime only (TensorFlow's import costs ~4 s),
    and writes the same strokes as the Keras path."""
    import subprocess
    import sys

    code = (
        "import sys; from zoo.cli import main; main(sys.argv[1:]); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'"
    )
    outs = {}
    for backend in ("auto", "keras"):
        out = str(tmp_path / f"{backend}.svg")
        run = subprocess.run(
            [sys.executable, "-c", code if backend == "auto" else "import sys; from zoo.cli import main; main(sys.argv[1:])",
             "write", "Hello world", "--bias", "1", "--backend", backend, "--out", out],
            capture_output=True, text=True, timeout=300,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        assert json.loads(run.stdout.strip().splitlines()[-1])["lines"] == 1
        outs[backend] = read_svg_offsets(out)
    # The same strokes: the engines agree to float rounding (~1e-4), the SVG stores 0.01 tablet units.
    assert [len(a) for a in outs["auto"]] == [len(b) for b in outs["keras"]]
    for a, b in zip(outs["auto"], outs["keras"]):
        np.testing.assert_allclose(a, b, atol=0.011)
