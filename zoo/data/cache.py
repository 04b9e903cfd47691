"""The prepared IAM-OnDB cache: one compressed .npz that training loads in seconds.

Pen offsets are integers in tablet units (interpolated readings are rounded), so
they are stored as int16 with a uint8 end-of-stroke flag: the 10k lines of the
database pack into ~15 MB. The same file is what travels to a GPU machine.
"""

from __future__ import annotations

import json
import os
import sys
import time
import zipfile
import zlib

import numpy as np

from zoo import atomic
from zoo.data import iam

CACHE_VERSION = 1
DEFAULT_CACHE = os.path.join("cache", "iam-ondb.npz")

# Graves (2013) trained on trainset + testset_t + testset_f and stopped early on
# testset_v; a copy without testset_t trains on the other two.
TRAIN_SPLITS = ("trainset", "testset_f", "testset_t")
VALIDATION_SPLIT = "testset_v"


class HandwritingSet:
    """Lines of raw pen offsets (dx, dy, eos) with transcriptions and official splits."""

    def __init__(self, offsets, eos, starts, ids, texts, splits, report):
        self.offsets = offsets  # (P, 2) int16, tablet units
        self.eos = eos  # (P,) uint8
        self.starts = starts  # (L + 1,) int64: line i is rows starts[i]:starts[i+1]
        self.ids = list(ids)
        self.texts = list(texts)
        self.splits = splits  # name -> line indices
        self.report = report  # dict: counts from the reader

    def __len__(self):
        return len(self.ids)

    def line(self, i: int) -> np.ndarray:
        """Raw offsets of line i as float32 (N, 3)."""
        a, b = self.starts[i], self.starts[i + 1]
        return np.concatenate([self.offsets[a:b].astype(np.float32), self.eos[a:b, None].astype(np.float32)], axis=1)

    def index(self, line_id: str) -> int:
        try:
            return self.ids.index(line_id)
        except ValueError:
            raise KeyError(f"line {line_id!r} is not in the prepared data (ids look like {self.ids[0]!r})") from None

    def split_indices(self, name: str) -> np.ndarray:
        """Line indices of an official split, of ``train`` (the training union) or ``all``."""
        if name == "all":
            return np.arange(len(self))
        if name == "train":
            parts = [self.splits[s] for s in TRAIN_SPLITS if s in self.splits]
            return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
        if name not in self.splits:
            raise KeyError(f"unknown split {name!r}; choose one of: all, train, {', '.join(self.splits)}")
        return self.splits[name]

    def lines(self, name: str) -> list[np.ndarray]:
        return [self.line(i) for i in self.split_indices(name)]

    def normalization(self, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of (dx, dy) over a split's offsets."""
        rows = np.concatenate([self.offsets[self.starts[i] + 1 : self.starts[i + 1]] for i in self.split_indices(split)])
        rows = rows.astype(np.float64)
        return rows.mean(axis=0).astype(np.float32), rows.std(axis=0).astype(np.float32)

    # ------------------------------------------------------------ io

    def save(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # Written whole under a temporary name, then renamed: a kill leaves the old cache or the new one.
        with atomic.replacing(path) as tmp:
            np.savez_compressed(
                tmp,
                version=np.int64(CACHE_VERSION),
                offsets=self.offsets,
                eos=self.eos,
                starts=self.starts,
                ids=np.asarray(self.ids),
                texts=np.asarray(self.texts),
                report=np.asarray(json.dumps(self.report)),
                **{f"split_{k}": v for k, v in self.splits.items()},
            )

    @classmethod
    def load(cls, path: str) -> "HandwritingSet":
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no prepared cache at {path}; run `python -m zoo prepare --data DIR --out {path}` first")
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["version"]) != CACHE_VERSION:
                    raise ValueError(f"cache version {int(z['version'])}, expected {CACHE_VERSION}")
                splits = {k[len("split_") :]: z[k] for k in z.files if k.startswith("split_")}
                return cls(z["offsets"], z["eos"], z["starts"], z["ids"].tolist(), z["texts"].tolist(), splits, json.loads(str(z["report"])))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            # A truncated copy, a full disk, a cache of another version: say which file and how to remake it.
            raise ValueError(
                f"{path} is not a readable zoo cache ({type(exc).__name__}: {exc}); it is damaged or incomplete: "
                f"make it again with `python -m zoo prepare --data DIR --out {path}` (DIR: the IAM-OnDB folder)"
            ) from exc

    @classmethod
    def from_lines(cls, lines: list[iam.Line], splits: dict, report: dict) -> "HandwritingSet":
        offsets, eos, starts = [], [], [0]
        for ln in lines:
            pts = np.round(ln.points[:, :2]).astype(np.int64)
            off = np.zeros_like(pts)
            off[1:] = pts[1:] - pts[:-1]
            offsets.append(off)
            eos.append(ln.points[:, 2].astype(np.uint8))
            starts.append(starts[-1] + len(pts))
        off = np.concatenate(offsets) if offsets else np.zeros((0, 2), np.int64)
        if off.size and np.abs(off).max() > np.iinfo(np.int16).max:
            raise ValueError("an offset does not fit int16; the data is not IAM-OnDB tablet units")
        return cls(
            off.astype(np.int16),
            np.concatenate(eos) if eos else np.zeros(0, np.uint8),
            np.asarray(starts, np.int64),
            [ln.id for ln in lines],
            [ln.text for ln in lines],
            splits,
            report,
        )


def prepare(data_dir: str, out_path: str = DEFAULT_CACHE, progress: bool = True, repair: bool = True) -> HandwritingSet:
    """Read the archives in ``data_dir``, repair (unless ``repair`` is False), split, and write the cache.

    The cache's report records ``repaired``: whether missing readings were
    interpolated and glitch jumps dropped (`zoo prepare --no-repair` keeps them).
    """
    t0 = time.time()
    lines, report = iam.read_lines(data_dir, progress=progress, repair=repair)
    if not lines:
        raise iam.IAMDataError(f"no usable lines were read from {data_dir}: {report.summary()}")
    splits, absent = iam.assign_splits(lines, data_dir)
    summary = {
        "data_dir": os.path.abspath(data_dir),
        "xml_files": report.xml_files,
        "lines": report.lines,
        "corrupt_files": len(report.corrupt_files),
        "corrupt_examples": report.corrupt_files[:5],
        "missing_transcription": len(report.missing_transcription),
        "repaired": bool(repair),
        "interpolated_points": report.interpolated_points,
        "dropped_jumps": report.dropped_jumps,
        "split_lines": {k: int(len(v)) for k, v in splits.items()},
        "split_forms_absent": absent,
        "seconds": round(time.time() - t0, 1),
    }
    data = HandwritingSet.from_lines(lines, splits, summary)
    data.save(out_path)
    return data


def default_cache_path(data_dir: str) -> str:
    """Where the cache of a raw data folder lives: $ZOO_CACHE_DIR or ~/.cache/zoo."""
    import hashlib

    root = os.environ.get("ZOO_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "zoo"))
    key = hashlib.sha256(os.path.abspath(data_dir).encode()).hexdigest()[:12]
    return os.path.join(root, f"iam-ondb-{key}.npz")


def resolve_iam_dir(path: str) -> str:
    """Accept the IAM folder itself or a data root holding ``iam-ondb/``."""
    nested = os.path.join(path, "iam-ondb")
    return nested if os.path.isdir(nested) else path


def load_handwriting(path: str, progress: bool = True) -> HandwritingSet:
    """A prepared .npz, or a raw IAM-OnDB folder (prepared once, then cached)."""
    if path.endswith(".npz"):
        return HandwritingSet.load(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path} is neither a prepared .npz cache nor a folder with the IAM-OnDB archives")
    data_dir = resolve_iam_dir(path)
    cached = default_cache_path(data_dir)
    sources = [os.path.join(data_dir, n) for n in os.listdir(data_dir)]
    newest = max((os.path.getmtime(p) for p in sources), default=0.0)
    if os.path.isfile(cached) and os.path.getmtime(cached) >= newest:
        try:
            return HandwritingSet.load(cached)
        except ValueError as exc:  # damaged (a killed copy, a full disk) or of another version: prepare again
            print(f"note: the cache {cached} is unreadable ({exc.__cause__ or exc}); preparing it again from {data_dir}", file=sys.stderr)
    return prepare(data_dir, cached, progress=progress)
