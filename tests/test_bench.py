"""bench/train_throughput.py: one JSON object, real points per second, and the side-by-side timing of another commit."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, make_iam_folder
from zoo.data.cache import prepare

BENCH = os.path.join(REPO, "bench", "train_throughput.py")


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("iam")
    make_iam_folder(str(root), lines_per_form=4)  # 16 training lines
    out = str(root / "cache.npz")
    prepare(str(root), out, progress=False)
    return out


def bench(*args, cwd=REPO):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    tiny = ["--units", "8", "--layers", "2", "--mixtures", "2", "--window-components", "2", "--batch-size", "4", "--warmup", "1", "--batches", "2"]
    done = subprocess.run([sys.executable, BENCH, *tiny, *args, "--json"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)  # nothing else on stdout


def worktrees() -> str:
    return subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout


@pytest.mark.slow  # 35 s (two subprocesses and a git worktree): kept out of the 15-minute default suite
@pytest.mark.skipif(shutil.which("git") is None or not os.path.isdir(os.path.join(REPO, ".git")), reason="needs a git checkout")
def test_compare_commit_times_both_codes_on_the_same_batches_and_weights(small_cache):
    before = worktrees()
    result = bench("--data", small_cache, "--compare-commit", "HEAD")
    for key in ("real_points_per_s", "baseline_real_points_per_s", "ratio", "loss_diff", "commit", "baseline_commit"):
        assert key in result, key
    assert result["real_points"] > 0 and result["padded_points"] >= result["real_points"]
    assert result["weights_copied"] and result["loss_agrees"]
    # HEAD's code on the same batches from the same weights: the same loss, and a throughput of the same order.
    assert result["loss_rel_diff"] < 1e-4
    assert 0.2 < result["ratio"] < 5.0
    assert worktrees() == before  # the temporary worktree is gone


def test_prediction_network_alone_with_its_arithmetic_ceiling(small_cache):
    result = bench("--data", small_cache, "--model", "prediction", "--ceiling")
    assert result["model"] == "prediction" and result["real_points_per_s"] > 0
    assert "ratio" not in result
    c = result["ceiling"]
    # 2 x 8 cells, M = 2: kernels (3, 32) + (8, 32), (3 + 8, 32) + (8, 32), output layer (16, 13); 6 operations per weight.
    assert c["operations_per_padded_point"] == 6 * (3 * 32 + 8 * 32 + 11 * 32 + 8 * 32 + 16 * 13)
    assert c["peak_ops_per_s"] > 1e8 and c["loop_product_ops_per_s"] > 1e6
    share = result["real_points"] / result["padded_points"]
    assert abs(c["achieved_ops_per_s"] - result["real_points_per_s"] / share * c["operations_per_padded_point"]) < 1e-6 * c["achieved_ops_per_s"]
    assert abs(c["real_points_per_s_at_peak"] - c["peak_ops_per_s"] / c["operations_per_padded_point"] * share) < 1e-6 * c["real_points_per_s_at_peak"]


def test_write_quality_records_intervals_and_compares_line_by_line(tmp_path):
    """bench/write_quality.py on a copy of the shipped synthesis preset, two sentences at one bias: the
    recorded CER carries its interval and per-line counts, and --against the same preset at the same seed
    finds a difference of 0 that cannot be told apart, on the card too."""
    preset = tmp_path / "writer"
    shutil.copytree(os.path.join(REPO, "saved_models", "iam-synthesis-small"), preset, ignore=shutil.ignore_patterns("saved_model", "*.int8.onnx"))
    sentences = tmp_path / "two.txt"
    sentences.write_text("Quiet foxes jump.\nSeven bright zebras.\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = lambda *extra: subprocess.run(  # noqa: E731
        [sys.executable, os.path.join(REPO, "bench", "write_quality.py"), "--model", str(preset), "--sentences", str(sentences),
         "--biases", "1", "--no-control", "--out", str(tmp_path / "img"), "--record", "--json", *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    first = run()
    assert first.returncode == 0, first.stderr[-3000:]
    result = json.loads(first.stdout)["results"]["sentences, bias 1"]
    lo, hi = result["cer_ci95"]
    assert lo <= result["cer"] <= hi and len(result["line_char_edits"]) == 2 and sum(result["line_chars"]) == result["characters"]
    again = run("--against", str(preset))
    assert again.returncode == 0, again.stderr[-3000:]
    diff = json.loads(again.stdout)["against"]["differences"]["sentences, bias 1"]
    assert diff["difference"] == 0 and diff["ci95"] == [0.0, 0.0]  # the same writer, texts and seed: the same lines
    assert "| sentences, bias 1 |" in (preset / "README.md").read_text() and "told apart" in (preset / "README.md").read_text()
    other_seed = run("--against", str(preset), "--seed", "1")
    assert other_seed.returncode != 0 and "seed 0, not 1" in other_seed.stderr
