import os
import shutil

import numpy as np
import pytest

from conftest import archive_folder, make_iam_folder, stroke_xml, wavy_strokes, write_form
from zoo.data import iam
from zoo.data.cache import HandwritingSet, prepare


def test_parses_strokes_and_transcriptions(iam_folder):
    lines, report = iam.read_lines(iam_folder)
    assert report.lines == len(lines) == 15  # 5 forms x 3 lines
    assert report.corrupt_files == [] and report.missing_transcription == []
    first = lines[0]
    assert first.id == "a01-000u-01" and first.form == "a01-000u"
    assert first.text == "line 0 of a01-000u says Hello, World!"
    # 3 strokes of 40 points; the last point of each stroke carries eos=1.
    assert first.points.shape == (120, 3)
    assert np.flatnonzero(first.points[:, 2]).tolist() == [39, 79, 119]


def test_malformed_file_and_missing_transcription_are_skipped_and_counted(tmp_path):
    root = str(tmp_path)
    rng = np.random.default_rng(1)
    good = [wavy_strokes(rng) for _ in range(3)]
    # Line 2 is broken XML; the CSR section has only 2 lines, so line 3 has no text.
    write_form(root, "a01-000u", good, ["first line", "second line"], raw_xml={2: "<WhiteboardCaptureSession><StrokeSet><Stroke>"})
    write_form(root, "b01-000", [wavy_strokes(rng)], None)  # no ascii file at all
    lines, report = iam.read_lines(root)
    assert [ln.id for ln in lines] == ["a01-000u-01"]
    assert len(report.corrupt_files) == 1 and report.corrupt_files[0].startswith("a01-000u-02.xml")
    assert sorted(report.missing_transcription) == ["a01-000u-03", "b01-000-01"]
    assert "1 unreadable, 2 without transcription" in report.summary()


def test_archives_read_like_folders(iam_folder):
    from_folders, _ = iam.read_lines(iam_folder)
    archive_folder(iam_folder, "lineStrokes")
    archive_folder(iam_folder, "ascii")
    shutil.rmtree(os.path.join(iam_folder, "lineStrokes"))
    shutil.rmtree(os.path.join(iam_folder, "ascii"))
    from_archives, _ = iam.read_lines(iam_folder)
    assert [ln.id for ln in from_archives] == [ln.id for ln in from_folders]
    assert all(np.array_equal(a.points, b.points) for a, b in zip(from_archives, from_folders))


def test_corrupt_archive_gives_a_clear_error(iam_folder):
    path = archive_folder(iam_folder, "lineStrokes")
    shutil.rmtree(os.path.join(iam_folder, "lineStrokes"))
    with open(path, "rb") as f:
        head = f.read()
    with open(path, "wb") as f:
        f.write(head[: len(head) // 2])  # truncated download
    with pytest.raises(iam.IAMDataError, match="corrupt or truncated.*Download it again"):
        iam.read_lines(iam_folder)


def test_missing_archives_name_the_fix(tmp_path):
    with pytest.raises(iam.IAMDataError, match="lineStrokes-all.tar.gz"):
        iam.read_lines(str(tmp_path))


def test_missing_readings_are_interpolated_and_jumps_dropped():
    t = 0.015 * np.arange(10)
    x = 10.0 * np.arange(10)
    y = np.zeros(10)
    stroke = np.stack([x, y, t], axis=1)
    # Remove readings 4 and 5: a 45 ms clock gap that also spans 30 units.
    gappy = np.delete(stroke, [4, 5], axis=0)
    xy, n_interp, n_drop = iam.repair_stroke(gappy)
    assert (n_interp, n_drop) == (2, 0)
    np.testing.assert_allclose(xy[:, 0], x)
    # A single reading 2000 units away is a glitch, not a pen movement.
    spiky = stroke.copy()
    spiky[6, 1] = 2000.0
    xy, n_interp, n_drop = iam.repair_stroke(spiky)
    assert (n_interp, n_drop) == (0, 1) and len(xy) == 9 and xy[:, 1].max() == 0.0


def test_a_pause_is_not_a_gap():
    # The clock jumps but the pen barely moved: nothing to interpolate.
    stroke = np.array([[0, 0, 0.0], [5, 0, 0.015], [8, 0, 0.3], [12, 0, 0.315]], float)
    _, n_interp, _ = iam.repair_stroke(stroke)
    assert n_interp == 0


def test_offsets_round_trip():
    rng = np.random.default_rng(0)
    points = iam.strokes_to_points(wavy_strokes(rng))
    offsets = iam.points_to_offsets(points)
    assert np.all(offsets[0, :2] == 0)
    back = iam.offsets_to_points(offsets)
    np.testing.assert_allclose(back[:, :2] + points[0, :2], points[:, :2], atol=1e-3)
    np.testing.assert_array_equal(back[:, 2], points[:, 2])


def test_split_lists_with_absent_forms_and_leading_spaces(iam_folder):
    with open(os.path.join(iam_folder, "splits", "testset_t.txt"), "w") as f:
        f.write(" z99-999\n z99-998\n\n")
    lines, _ = iam.read_lines(iam_folder)
    splits, absent = iam.assign_splits(lines, iam_folder)
    assert {k: len(v) for k, v in splits.items()} == {"trainset": 9, "testset_v": 3, "testset_t": 0, "testset_f": 3}
    assert absent == {"trainset": 0, "testset_v": 0, "testset_t": 2, "testset_f": 0}


def test_prepared_cache_round_trip(iam_folder, tmp_path):
    out = str(tmp_path / "cache.npz")
    data = prepare(iam_folder, out, progress=False)
    again = HandwritingSet.load(out)
    assert again.ids == data.ids and again.texts == data.texts
    lines, _ = iam.read_lines(iam_folder)
    for i, ln in enumerate(lines):
        expected = iam.points_to_offsets(np.round(ln.points))
        np.testing.assert_array_equal(again.line(i), expected)
    assert again.report["split_lines"] == {"trainset": 9, "testset_v": 3, "testset_f": 3}
    assert len(again.lines("train")) == 12  # trainset + testset_f
    mean, std = again.normalization("train")
    rows = np.concatenate([again.line(i)[1:, :2] for i in again.split_indices("train")])
    np.testing.assert_allclose(mean, rows.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std, rows.std(0), rtol=1e-5)


def test_damaged_cache_names_the_fix(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="zoo prepare"):
        HandwritingSet.load(str(bad))
    with pytest.raises(FileNotFoundError, match="zoo prepare"):
        HandwritingSet.load(str(tmp_path / "absent.npz"))


def test_transcription_parser_keeps_csr_only():
    text = b"OCR:\n\nsome ocr text\n\nCSR: \n\nHello   there \nSecond line\n\n"
    assert iam.parse_transcription(text) == ["Hello there", "Second line"]
    with pytest.raises(ValueError):
        iam.parse_transcription(b"OCR:\n\nno csr\n")


def test_stroke_xml_without_points_is_rejected():
    with pytest.raises(ValueError):
        iam.parse_stroke_xml(b"<WhiteboardCaptureSession><StrokeSet></StrokeSet></WhiteboardCaptureSession>")


def _glitchy_folder(root):
    """One form whose first line holds a clock gap (two readings missing) and a 2000-unit spike."""
    rng = np.random.default_rng(3)
    t = 100.0 + 0.015 * np.arange(30)
    stroke = np.stack([1000.0 + 10.0 * np.arange(30), np.full(30, 800.0), t], axis=1)
    stroke[20, 1] = 2800.0  # a single reading 2000 units off: a recording glitch
    stroke = np.delete(stroke, [8, 9], axis=0)  # readings 8 and 9 never arrived: a 45 ms gap over 30 units
    write_form(root, "a01-000u", [[stroke, *wavy_strokes(rng, n_strokes=2, t0=101.0)]], ["a glitchy line"])
    os.makedirs(os.path.join(root, "splits"), exist_ok=True)
    with open(os.path.join(root, "splits", "testset_v.txt"), "w") as f:
        f.write("a01-000u\n")
    return root


@pytest.mark.parametrize("repair", [True, False])
def test_prepare_no_repair_keeps_the_glitches(tmp_path, repair):
    """`zoo prepare --no-repair` writes the lines as recorded and says so in the cache; without it the
    gap is filled and the spike dropped."""
    import json
    import subprocess
    import sys

    from conftest import REPO

    root = _glitchy_folder(str(tmp_path / "iam"))
    out = str(tmp_path / "cache.npz")
    args = [sys.executable, "-m", "zoo", "prepare", "--data", root, "--out", out, "--quiet"] + ([] if repair else ["--no-repair"])
    proc = subprocess.run(args, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    data = HandwritingSet.load(out)
    assert printed["repaired"] is data.report["repaired"] is repair
    first = data.line(0)[:, :2]  # offsets of the glitchy stroke come first (its 28 readings as recorded)
    steps = np.abs(first[1:28]).max(axis=1)
    if repair:
        assert (data.report["interpolated_points"], data.report["dropped_jumps"]) == (2, 1)
        assert len(data.line(0)) == 29 + 80  # 28 recorded - 1 spike + 2 filled, then two wavy strokes of 40
        # No spike (its reading is gone: one step of 20 in its place) and no 30-unit gap (two readings filled in).
        assert not np.any(first[1:29, 1]) and sorted(first[1:29, 0]) == [10] * 27 + [20]
    else:
        assert (data.report["interpolated_points"], data.report["dropped_jumps"]) == (0, 0)
        assert len(data.line(0)) == 28 + 80
        assert sorted(steps)[-2:] == [2000, 2000]  # out to the spike and back
        assert 30 in first[1:28, 0]  # the gap: one step over three readings' distance
    # The reader's own report says the same.
    _, report = iam.read_lines(root, repair=repair)
    assert report.repaired is repair and ("not repaired" in report.summary()) is (not repair)
