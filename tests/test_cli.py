"""`python -m zoo` end to end, in subprocesses, on fixture data and a tiny preset."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from conftest import REPO, make_iam_folder
from zoo.models.predictor import HandwritingPredictor
from zoo.presets import save_preset

NOISE = ("I0000", "W0000", "E0000", "cuda", "absl", "oneDNN", "cpu_feature_guard", "rebuild TensorFlow")


def zoo(*args, timeout=300):
    env = {**os.environ, "PYTHONPATH": REPO}
    env.pop("ZOO_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "zoo", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def assert_clean(proc):
    assert proc.returncode == 0, proc.stderr
    for word in NOISE:
        assert word not in proc.stdout and word not in proc.stderr, f"{word!r} leaked:\n{proc.stderr}"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = make_iam_folder(str(root / "iam"))
    model = HandwritingPredictor(units=8, num_layers=2, num_mixtures=3, offset_mean=(4.0, 0.0), offset_std=(10.0, 10.0))
    model.build()
    preset = str(root / "tiny-preset")
    save_preset(model, preset, {"note": "untrained"})
    return {"root": root, "data": data, "preset": preset}


def test_every_subcommand_has_help():
    for cmd in ([], ["prepare"], ["train"], ["evaluate"], ["sample"], ["density"]):
        proc = zoo(*cmd, "--help")
        assert_clean(proc)
        assert "usage: python -m zoo" in proc.stdout


def test_prepare_then_evaluate_prints_json(tiny):
    cache = str(tiny["root"] / "c.npz")
    proc = zoo("prepare", "--data", tiny["data"], "--out", cache, "--quiet")
    assert_clean(proc)
    assert json.loads(proc.stdout)["split_lines"]["trainset"] == 9
    proc = zoo("evaluate", "--model", tiny["preset"], "--data", cache, "--split", "testset_v", "--quiet")
    assert_clean(proc)
    result = json.loads(proc.stdout)
    assert result["lines"] == 3 and result["split"] == "testset_v"
    assert np.isfinite(result["nll_nats_per_line"])
    assert result["nll_nats_per_point"] == pytest.approx(result["nll_nats_per_line"] * 3 / result["points"], rel=1e-6)
    assert result["sse_per_point"] > 0


def test_sample_draws_svg_and_png(tiny):
    svg = str(tiny["root"] / "s.svg")
    proc = zoo("sample", "--model", tiny["preset"], "--steps", "60", "--count", "3", "--out", svg)
    assert_clean(proc)
    root = ET.parse(svg).getroot()
    assert len(root.findall(".//{http://www.w3.org/2000/svg}polyline")) >= 3
    png = str(tiny["root"] / "s.png")
    assert_clean(zoo("sample", "--model", tiny["preset"], "--steps", "60", "--count", "2", "--out", png))
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_density_figure(tiny):
    out = str(tiny["root"] / "d.png")
    proc = zoo("density", "--model", tiny["preset"], "--data", tiny["data"], "--line", "c03-000-01", "--out", out)
    assert_clean(proc)
    assert os.path.getsize(out) > 5000


def test_bad_input_gets_a_clear_error(tiny):
    proc = zoo("evaluate", "--model", "no-such-preset", "--data", tiny["data"])
    assert proc.returncode == 2 and "error: no preset 'no-such-preset'" in proc.stderr
    proc = zoo("evaluate", "--model", tiny["preset"], "--data", str(tiny["root"] / "nowhere"))
    assert proc.returncode == 2 and "error:" in proc.stderr and "Traceback" not in proc.stderr
    proc = zoo("sample", "--model", tiny["preset"], "--out", str(tiny["root"] / "x.gif"))
    assert proc.returncode == 2 and "FILE.svg or FILE.png" in proc.stderr
