"""IAM On-Line Handwriting Database: official archives -> lines of pen offsets.

Layout read (either the archives or their extracted folders, in one directory):

    lineStrokes-all.tar.gz   lineStrokes/a01/a01-001/a01-001w-01.xml   (ISO-8859-1 XML)
    ascii-all.tar.gz         ascii/a01/a01-001/a01-001w.txt            (OCR: / CSR: sections)
    splits/trainset.txt ...  one form id per line, some with leading spaces

Line N of a form's CSR section is the transcription of ``<form>-NN.xml``.
Graves (2013, sec. 4.1) repaired recording glitches by interpolating missing
readings and removing steps longer than a threshold; `repair_stroke` does both
and counts what it changed (``repair=False`` keeps the readings as recorded:
`zoo prepare --no-repair`). A file that cannot be read is skipped and counted.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tarfile
import zlib
import xml.etree.ElementTree as ET

import numpy as np

SPLITS = ("trainset", "testset_v", "testset_t", "testset_f")

# A reading is "missing" when the clock jumps by more than this many sampling
# intervals inside a stroke; the gap is filled by linear interpolation.
MISSING_READING_FACTOR = 2.5
# A step inside a stroke longer than this (tablet units, ~0.025 mm) is a
# recording glitch: normal steps are 5-60 units, the 99.99th percentile ~350.
MAX_STEP = 600.0
# Never invent more than this many readings in one gap.
MAX_INTERPOLATED = 16


@dataclasses.dataclass
class Line:
    """One handwritten line: pen points and their transcription."""

    id: str  # "a01-001w-01"
    form: str  # "a01-001w"
    text: str
    points: np.ndarray  # (N, 3) float32: absolute x, y, end-of-stroke flag


@dataclasses.dataclass
class ReadReport:
    """What the reader saw: every skip and repair, counted."""

    xml_files: int = 0
    lines: int = 0
    corrupt_files: list = dataclasses.field(default_factory=list)
    missing_transcription: list = dataclasses.field(default_factory=list)
    interpolated_points: int = 0
    dropped_jumps: int = 0
    repaired: bool = True  # False: read with repair=False, glitches kept as recorded

    def summary(self) -> str:
        repairs = (
            f"{self.interpolated_points} missing readings interpolated, {self.dropped_jumps} jumps over {MAX_STEP:g} units dropped"
            if self.repaired
            else "not repaired (missing readings and jumps kept as recorded)"
        )
        return (
            f"{self.lines} lines from {self.xml_files} stroke files; "
            f"{len(self.corrupt_files)} unreadable, "
            f"{len(self.missing_transcription)} without transcription (skipped); {repairs}"
        )


class IAMDataError(RuntimeError):
    """The IAM-OnDB files are missing or unusable; the message says how to fix it."""


# ---------------------------------------------------------------- parsing


def parse_stroke_xml(data: bytes) -> list[np.ndarray]:
    """Parse a lineStrokes XML file into strokes, each (n, 3) float64: x, y, time."""
    root = ET.fromstring(data)
    strokes = []
    for stroke in root.iter("Stroke"):
        pts = [(float(p.get("x")), float(p.get("y")), float(p.get("time", "nan"))) for p in stroke.iter("Point")]
        if pts:
            strokes.append(np.asarray(pts, dtype=np.float64))
    if not strokes:
        raise ValueError("no <Stroke> with <Point> elements")
    return strokes


def parse_transcription(data: bytes) -> list[str]:
    """The CSR section of an ascii/*.txt form file, one string per line."""
    text = data.decode("latin-1").replace("\r\n", "\n")
    match = re.search(r"^CSR:[ \t]*\n", text, flags=re.MULTILINE)
    if match is None:
        raise ValueError("no 'CSR:' section")
    lines = [ln.strip() for ln in text[match.end() :].split("\n")]
    # Drop the blank line(s) after the header and at the end of the file.
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return [re.sub(r"\s+", " ", ln) for ln in lines]


def read_split_list(path: str) -> list[str]:
    """Form ids of an official split list (leading spaces and blank lines ignored)."""
    with open(path, encoding="latin-1") as f:
        return [ln.strip() for ln in f if ln.strip()]


# ---------------------------------------------------------------- repair


def _median(values: np.ndarray) -> float:
    """np.median of a 1-D array, without its per-call overhead (called twice per stroke)."""
    s = np.sort(values)
    return (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2


def repair_stroke(stroke: np.ndarray, max_step: float = MAX_STEP) -> tuple[np.ndarray, int, int]:
    """Fill missing readings and drop glitch jumps in one stroke (x, y, time rows).

    Returns (points (n, 2), interpolated count, dropped count).
    """
    xy, t = stroke[:, :2], stroke[:, 2]
    dropped = 0
    # A reading further than max_step from the last good one is a glitch when
    # the reading after it comes back (a spike), or when it is the stroke's
    # first reading and the rest of the stroke lies elsewhere.
    # Nearly every stroke has no step that long, and then the walk below keeps every reading.
    if len(xy) > 1 and np.hypot(*np.diff(xy, axis=0).T).max() > max_step:
        far = lambda a, b: np.hypot(*(xy[a] - xy[b])) > max_step  # noqa: E731
        keep = [0]
        for i in range(1, len(xy)):
            if not far(i, keep[-1]):
                keep.append(i)
            elif i + 1 < len(xy) and not far(i + 1, keep[-1]):
                continue  # spike: drop reading i
            elif keep == [0] and (i + 1 == len(xy) or not far(i + 1, i)):
                keep = [i]  # the first reading was the glitch
            else:
                keep.append(i)
        dropped = len(xy) - len(keep)
        xy, t = xy[keep], t[keep]
    interpolated = 0
    if len(xy) > 2 and np.all(np.isfinite(t)):
        dt = np.diff(t)
        # Clock stamps are rounded to 10 ms while readings come every ~15 ms, so
        # the interval is the mean of the ordinary steps, not their median.
        positive = dt[dt > 0]
        interval = positive[positive <= 2 * _median(positive)].mean() if len(positive) else 0.0
        if interval > 0:
            gaps = np.flatnonzero(dt > MISSING_READING_FACTOR * interval)
            if len(gaps):
                steps = np.linalg.norm(np.diff(xy, axis=0), axis=1)
                typical = max(float(_median(steps)), 1.0)
                pieces, start = [], 0
                for g in gaps:
                    pieces.append(xy[start : g + 1])
                    start = g + 1
                    # As many readings as the clock says are missing, but no more
                    # than the distance covered needs (a pause is not a gap).
                    n_missing = min(
                        int(round(dt[g] / interval)) - 1,
                        int(np.ceil(steps[g] / typical)) - 1,
                        MAX_INTERPOLATED,
                    )
                    if n_missing < 1:
                        continue
                    frac = np.arange(1, n_missing + 1)[:, None] / (n_missing + 1)
                    pieces.append(xy[g] + frac * (xy[g + 1] - xy[g]))
                    interpolated += n_missing
                pieces.append(xy[start:])
                xy = np.concatenate(pieces)
    return xy, interpolated, dropped


def strokes_to_points(strokes: list[np.ndarray], report: ReadReport | None = None, repair: bool = True) -> np.ndarray:
    """Strokes -> (N, 3) float32 rows of absolute x, y and end-of-stroke.

    Each stroke goes through `repair_stroke` unless ``repair`` is False, which
    keeps every reading as recorded (gaps and glitch jumps included).
    """
    rows = []
    for stroke in strokes:
        if repair:
            xy, n_interp, n_drop = repair_stroke(stroke)
        else:
            xy, n_interp, n_drop = stroke[:, :2], 0, 0
        if report is not None:
            report.interpolated_points += n_interp
            report.dropped_jumps += n_drop
        if len(xy) == 0:
            continue
        eos = np.zeros((len(xy), 1))
        eos[-1] = 1.0
        rows.append(np.concatenate([xy, eos], axis=1))
    if not rows:
        raise ValueError("every stroke was empty after repair")
    return np.concatenate(rows).astype(np.float32)


def points_to_offsets(points: np.ndarray) -> np.ndarray:
    """Absolute points (N, 3) -> offsets (N, 3): (dx, dy, eos), first offset (0, 0).

    eos=1 marks the last point of a stroke, so the next offset is a pen-up move.
    """
    offsets = np.zeros_like(points)
    offsets[1:, :2] = points[1:, :2] - points[:-1, :2]
    offsets[:, 2] = points[:, 2]
    return offsets


def offsets_to_points(offsets: np.ndarray) -> np.ndarray:
    """Inverse of `points_to_offsets` (up to the origin): cumulative sum of dx, dy."""
    points = np.array(offsets, dtype=np.float64, copy=True)
    points[..., :2] = np.cumsum(points[..., :2], axis=-2)
    return points


# ---------------------------------------------------------------- archive access


def _iter_files(data_dir: str, name: str, suffix: str):
    """Yield (basename, bytes) for files of ``name``/ (folder or ``name``-all.tar.gz)."""
    folder = os.path.join(data_dir, name)
    archive = os.path.join(data_dir, f"{name}-all.tar.gz")
    if os.path.isdir(folder):
        for root, _, files in os.walk(folder):
            for fn in sorted(files):
                if fn.endswith(suffix):
                    path = os.path.join(root, fn)
                    try:
                        with open(path, "rb") as f:
                            yield fn, f.read()
                    except OSError:
                        yield fn, None
        return
    if not os.path.isfile(archive):
        raise IAMDataError(
            f"neither {folder}/ nor {archive} exists. Download lineStrokes-all.tar.gz and "
            "ascii-all.tar.gz from the IAM On-Line Handwriting Database (registration at "
            "https://fki.tic.heia-fr.ch/databases/iam-on-line-handwriting-database) into "
            f"{data_dir}, or pass --data pointing at the folder that holds them."
        )
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if not (member.isfile() and member.name.endswith(suffix)):
                    continue
                fobj = tar.extractfile(member)
                yield os.path.basename(member.name), (fobj.read() if fobj else None)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise IAMDataError(
            f"{archive} is corrupt or truncated ({exc}). Download it again; "
            "the files that were read before the damage are not used."
        ) from exc


def find_split_file(data_dir: str, split: str) -> str | None:
    for candidate in (os.path.join(data_dir, "splits", f"{split}.txt"), os.path.join(data_dir, f"{split}.txt")):
        if os.path.isfile(candidate):
            return candidate
    return None


def read_transcriptions(data_dir: str) -> dict[str, list[str]]:
    """form id -> CSR lines, for every readable ascii/*.txt file."""
    forms = {}
    for fn, data in _iter_files(data_dir, "ascii", ".txt"):
        if data is None:
            continue
        try:
            forms[fn[: -len(".txt")]] = parse_transcription(data)
        except (ValueError, UnicodeError):
            continue
    return forms


def read_lines(data_dir: str, forms: set[str] | None = None, progress: bool = False, repair: bool = True) -> tuple[list[Line], ReadReport]:
    """Read every line (or only those of ``forms``) with its transcription.

    Unreadable XML and lines without a transcription are skipped and listed in
    the report, never raised. ``repair=False`` skips `repair_stroke`.
    """
    transcriptions = read_transcriptions(data_dir)
    report = ReadReport(repaired=repair)
    lines = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc="reading IAM-OnDB lines", unit=" lines", total=None)
    for fn, data in _iter_files(data_dir, "lineStrokes", ".xml"):
        line_id = fn[: -len(".xml")]
        form, _, number = line_id.rpartition("-")
        if forms is not None and form not in forms:
            continue
        report.xml_files += 1
        if bar is not None:
            bar.update(1)
        csr = transcriptions.get(form)
        idx = int(number) - 1 if number.isdigit() else -1
        if csr is None or not (0 <= idx < len(csr)) or not csr[idx]:
            report.missing_transcription.append(line_id)
            continue
        try:
            if data is None:
                raise ValueError("unreadable")
            points = strokes_to_points(parse_stroke_xml(data), report, repair=repair)
        except (ET.ParseError, ValueError, TypeError) as exc:
            report.corrupt_files.append(f"{fn}: {exc}")
            continue
        lines.append(Line(id=line_id, form=form, text=csr[idx], points=points))
        report.lines += 1
    if bar is not None:
        bar.close()
    lines.sort(key=lambda ln: ln.id)
    return lines, report


def assign_splits(lines: list[Line], data_dir: str) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Line indices per official split, and how many listed forms are absent."""
    by_form: dict[str, list[int]] = {}
    for i, ln in enumerate(lines):
        by_form.setdefault(ln.form, []).append(i)
    splits, absent = {}, {}
    for split in SPLITS:
        path = find_split_file(data_dir, split)
        if path is None:
            continue
        forms = read_split_list(path)
        idx = [i for form in forms for i in by_form.get(form, [])]
        splits[split] = np.asarray(sorted(idx), dtype=np.int64)
        absent[split] = sum(1 for form in forms if form not in by_form)
    if not splits:
        raise IAMDataError(
            f"no split lists (trainset.txt, testset_v.txt, ...) in {data_dir}/splits or {data_dir}; "
            "copy the official IAM-OnDB task lists there."
        )
    return splits, absent


__all__ = [
    "Line",
    "ReadReport",
    "IAMDataError",
    "SPLITS",
    "parse_stroke_xml",
    "parse_transcription",
    "read_split_list",
    "repair_stroke",
    "strokes_to_points",
    "points_to_offsets",
    "offsets_to_points",
    "read_lines",
    "read_transcriptions",
    "assign_splits",
]
