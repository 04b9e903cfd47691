"""Shared fixtures: IAM-OnDB-format files written by the tests, and the real data when present."""

from __future__ import annotations

import json
import os
import tarfile
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    """Caches made by tests go to a temporary folder unless ZOO_CACHE_DIR says where."""
    if "ZOO_CACHE_DIR" not in os.environ:
        os.environ["ZOO_CACHE_DIR"] = str(tmp_path_factory.mktemp("zoo-cache"))
    yield


def real_data_dir() -> str | None:
    root = os.environ.get("ZOO_DATA_DIR")
    if not root:
        return None
    return os.path.join(root, "iam-ondb") if os.path.isdir(os.path.join(root, "iam-ondb")) else root


requires_data = pytest.mark.skipif(real_data_dir() is None, reason="set ZOO_DATA_DIR to the folder holding iam-ondb/")


def stroke_xml(strokes) -> str:
    """IAM-OnDB lineStrokes XML for strokes given as (n, 3) arrays of x, y, time."""
    out = [
        '<?xml version="1.0" encoding="ISO-8859-1"?>',
        "<WhiteboardCaptureSession>",
        "  <WhiteboardDescription>",
        '    <SensorLocation corner="top_left"/>',
        '    <DiagonallyOppositeCoords x="6000" y="1200"/>',
        "  </WhiteboardDescription>",
        "  <StrokeSet>",
    ]
    for s in strokes:
        out.append(f'    <Stroke colour="black" start_time="{s[0, 2]:.2f}" end_time="{s[-1, 2]:.2f}">')
        out += [f'      <Point x="{int(x)}" y="{int(y)}" time="{t:.3f}"/>' for x, y, t in s]
        out.append("    </Stroke>")
    out += ["  </StrokeSet>", "</WhiteboardCaptureSession>"]
    return "\n".join(out) + "\n"


def wavy_strokes(rng, n_strokes=4, points=40, x0=1000.0, t0=100.0):
    """Handwriting-like strokes: loops moving right, readings every 15 ms."""
    strokes, t = [], t0
    for k in range(n_strokes):
        i = np.arange(points)
        x = x0 + 180 * k + 3.0 * i + 25 * np.cos(i / 3.0 + rng.uniform(0, 6))
        y = 800 + 40 * np.sin(i / 3.0 + rng.uniform(0, 6))
        times = t + 0.015 * i
        strokes.append(np.stack([x, y, times], axis=1))
        t = times[-1] + 0.2
    return strokes


def write_form(root, form, lines_strokes, transcription, raw_xml=None):
    """Write one form: lineStrokes/<a01>/<a01-000>/<form>-NN.xml and ascii/.../<form>.txt."""
    prefix, number = form.split("-")[0], "-".join(form.split("-")[:2])[:7]
    sdir = os.path.join(root, "lineStrokes", prefix, number)
    adir = os.path.join(root, "ascii", prefix, number)
    os.makedirs(sdir, exist_ok=True)
    os.makedirs(adir, exist_ok=True)
    for n, strokes in enumerate(lines_strokes, start=1):
        text = raw_xml[n] if raw_xml and n in raw_xml else stroke_xml(strokes)
        with open(os.path.join(sdir, f"{form}-{n:02d}.xml"), "w", encoding="latin-1") as f:
            f.write(text)
    if transcription is not None:
        with open(os.path.join(adir, f"{form}.txt"), "w", encoding="latin-1") as f:
            f.write("OCR:\n\n" + " ".join(transcription) + "\n\nCSR: \n\n" + "\n".join(t + " " for t in transcription) + "\n")


def make_iam_folder(root, forms_per_split=None, lines_per_form=3, seed=0):
    """A small IAM-OnDB copy: extracted folders plus split lists, all written here."""
    rng = np.random.default_rng(seed)
    forms_per_split = forms_per_split or {"trainset": ["a01-000u", "a01-001w", "b02-010"], "testset_v": ["c03-000"], "testset_f": ["d04-001x"]}
    for split, forms in forms_per_split.items():
        for form in forms:
            lines = [wavy_strokes(rng, n_strokes=3 + (i % 3)) for i in range(lines_per_form)]
            write_form(root, form, lines, [f"line {i} of {form} says Hello, World!" for i in range(lines_per_form)])
    os.makedirs(os.path.join(root, "splits"), exist_ok=True)
    for split, forms in forms_per_split.items():
        with open(os.path.join(root, "splits", f"{split}.txt"), "w") as f:
            f.write("".join(f" {form}\n" for form in forms))
    return root


def archive_folder(root, name):
    """Pack root/<name>/ into root/<name>-all.tar.gz as the official download is packed."""
    path = os.path.join(root, f"{name}-all.tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        tar.add(os.path.join(root, name), arcname=name)
    return path


@pytest.fixture
def iam_folder(tmp_path):
    return make_iam_folder(str(tmp_path / "iam"))


def wait_for_epoch(state_path: str, epoch: int, processes=(), timeout: float = 240.0) -> None:
    """Wait until a training run's state file says ``epoch`` epochs are checkpointed; fail if any of
    ``processes`` (subprocess.Popen) exits first or the time runs out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.isfile(state_path):
            with open(state_path) as f:
                if json.load(f)["epoch"] >= epoch:
                    return
        for proc in processes:
            assert proc.poll() is None, (proc.communicate()[1] or "")[-2000:]
        time.sleep(0.2)
    pytest.fail(f"training wrote no checkpoint of epoch {epoch} in {timeout:g} s")
