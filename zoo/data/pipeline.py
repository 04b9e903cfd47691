"""Batches of whole lines: normalised offsets, length bucketing, masks.

A batch holds lines of similar length (sorted by length with a little random
jitter per pass, so batches differ between passes), padded at the end to a
multiple of ``pad_to`` steps so that compiled graphs see few distinct shapes.
Input x_t is point t and the target is point t+1; the mask marks real targets.
"""

from __future__ import annotations

import numpy as np
import keras


class LineBatches(keras.utils.PyDataset):
    """(inputs (B, T, 3), targets+mask (B, T, 4)) batches of normalised lines.

    An epoch is ``steps_per_epoch`` batches (default: one pass), so short
    epochs (frequent checkpoints) and resuming at any epoch see the same
    stream of batches for a given seed.
    """

    def __init__(self, lines, batch_size=32, shuffle=True, seed=0, steps_per_epoch=None, pad_to=32, jitter=0.1, **kwargs):
        super().__init__(**kwargs)
        if not lines:
            raise ValueError("no lines to batch: the split is empty")
        self.lines = [ln for ln in lines if len(ln) >= 2]
        self.lengths = np.asarray([len(ln) - 1 for ln in self.lines])
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pad_to = pad_to
        self.jitter = jitter
        self.batches_per_pass = int(np.ceil(len(self.lines) / batch_size))
        self.steps_per_epoch = steps_per_epoch or self.batches_per_pass
        self.epoch = 0
        self._pass_cache = {}

    def __len__(self):
        return self.steps_per_epoch

    def on_epoch_end(self):
        self.epoch += 1

    def _batches_of_pass(self, p: int) -> list[np.ndarray]:
        if p not in self._pass_cache:
            if self.shuffle:
                rng = np.random.default_rng([self.seed, p])
                key = self.lengths * (1.0 + self.jitter * rng.random(len(self.lengths)))
            else:
                key = self.lengths
            order = np.argsort(key, kind="stable")
            batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
            if self.shuffle:
                batches = [batches[j] for j in rng.permutation(len(batches))]
            self._pass_cache = {p: batches}  # keep one pass only
        return self._pass_cache[p]

    def batch_indices(self, i: int) -> np.ndarray:
        step = (self.epoch * self.steps_per_epoch + i) if self.shuffle else i
        p, j = divmod(step, self.batches_per_pass)
        return self._batches_of_pass(p)[j]

    def padded_length(self, idx) -> int:
        longest = int(self.lengths[idx].max())
        return int(np.ceil(longest / self.pad_to) * self.pad_to)

    def __getitem__(self, i):
        idx = self.batch_indices(i)
        T = self.padded_length(idx)
        x = np.zeros((len(idx), T, 3), np.float32)
        y = np.zeros((len(idx), T, 4), np.float32)
        for b, k in enumerate(idx):
            ln = self.lines[k]
            n = len(ln) - 1
            x[b, :n] = ln[:-1]
            y[b, :n, :3] = ln[1:]
            y[b, :n, 3] = 1.0
        return x, y

    def padding_fraction(self, passes: int = 1) -> float:
        """Fraction of padded (wasted) steps over whole passes of this stream."""
        real = padded = 0
        for p in range(passes):
            for idx in self._batches_of_pass(p):
                real += int(self.lengths[idx].sum())
                padded += self.padded_length(idx) * len(idx)
        return 1.0 - real / padded


class TextLineBatches(LineBatches):
    """LineBatches whose inputs also carry each line's text as ids (0 = padding).

    ((inputs (B, T, 3), text ids (B, U)), targets+mask (B, T, 4)); U is padded
    to a multiple of 8 so compiled graphs see few text lengths.
    """

    def __init__(self, lines, text_ids, batch_size=32, **kwargs):
        keep = [i for i, ln in enumerate(lines) if len(ln) >= 2]
        super().__init__([lines[i] for i in keep], batch_size, **kwargs)
        self.text_ids = [np.asarray(text_ids[i], np.int32) for i in keep]

    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        idx = self.batch_indices(i)
        longest = max(len(self.text_ids[k]) for k in idx)
        ids = np.zeros((len(idx), int(np.ceil(longest / 8) * 8)), np.int32)
        for b, k in enumerate(idx):
            ids[b, : len(self.text_ids[k])] = self.text_ids[k]
        return (x, ids), y


class RecognitionBatches(LineBatches):
    """Whole lines to read and their texts, for a recognizer trained with CTC.

    ((strokes (B, T, 3), lengths (B,)), text ids (B, U)); the leading zero
    offset of a real line is dropped (written lines start with their first
    stroke), T is padded to a multiple of ``pad_to`` and U to one of 8.

    ``lines`` are raw offsets, normalised here by ``normalize``. With
    ``augment`` (training) every line is drawn anew each pass through a random
    affine map of its pen offsets: scale 0.8-1.25, width 0.85-1.15 of the
    height, slant (shear) -0.35..0.35, rotation +-0.1 rad. Handwriting the
    recognizer never saw varies in just these ways between writers (and the
    synthesis network's in bias and style), so it learns letters, not writers.
    """

    def __init__(self, lines, text_ids, batch_size=32, normalize=None, augment=False, **kwargs):
        # CTC needs a frame per label (and one between repeated labels): at 4 points per frame a line
        # needs >= 8 points per character to be learnable (IAM-OnDB lines have >= 12; others are dropped).
        keep = [i for i, ln in enumerate(lines) if len(text_ids[i]) and len(ln) >= 3 and len(ln) - 1 >= 8 * len(text_ids[i])]
        self.dropped = len(lines) - len(keep)
        super().__init__([np.asarray(lines[i][1:], np.float32) for i in keep], batch_size, **kwargs)
        self.lengths = np.asarray([len(ln) for ln in self.lines])
        self.text_ids = [np.asarray(text_ids[i], np.int32) for i in keep]
        self.augment = augment
        self.normalize = normalize or (lambda raw: raw)
        if not augment:  # nothing changes between passes: normalise once, not at every batch
            self.lines = [self.normalize(ln) for ln in self.lines]
            self.normalize = lambda ready: ready

    def distort(self, raw: np.ndarray, rng) -> np.ndarray:
        """A random affine map of a line's (dx, dy) offsets (pen bits unchanged)."""
        scale, aspect = rng.uniform(0.8, 1.25), rng.uniform(0.85, 1.15)
        shear, angle = rng.uniform(-0.35, 0.35), rng.uniform(-0.1, 0.1)
        c, s = np.cos(angle), np.sin(angle)
        # y points down (IAM-OnDB, as SVG): a slant to the right moves x by -shear * dy.
        matrix = scale * np.array([[c, -s], [s, c]]) @ np.array([[aspect, -shear], [0.0, 1.0]])
        out = raw.copy()
        out[:, :2] = raw[:, :2] @ matrix.T.astype(np.float32)
        return out

    def __getitem__(self, i):
        idx = self.batch_indices(i)
        T = self.padded_length(idx)
        x = np.zeros((len(idx), T, 3), np.float32)
        longest = max(len(self.text_ids[k]) for k in idx)
        ids = np.zeros((len(idx), int(np.ceil(longest / 8) * 8)), np.int32)
        rng = np.random.default_rng([self.seed, self.epoch, i]) if self.augment else None
        for b, k in enumerate(idx):
            raw = self.distort(self.lines[k], rng) if self.augment else self.lines[k]
            x[b, : self.lengths[k]] = self.normalize(raw)
            ids[b, : len(self.text_ids[k])] = self.text_ids[k]
        return (x, self.lengths[idx].astype(np.int32)), ids


def batches_for(model, raw_lines, texts=None, **kwargs) -> LineBatches:
    """Batches a model reads: its own normalisation, and the texts when it writes (or reads) text."""
    if getattr(model, "task", None) == "recognition":
        if texts is None:
            raise ValueError("a recognizer needs the lines' texts")
        # A line without a transcription teaches nothing: it is dropped (RecognitionBatches.dropped counts it).
        ids = [model.alphabet.encode(t, substitute=True) if t.strip() else np.zeros(0, np.int32) for t in texts]
        return RecognitionBatches(raw_lines, ids, normalize=model.normalize, **kwargs)
    kwargs.pop("augment", None)  # the generative models learn the data's own distribution, undistorted
    lines = [model.normalize(ln) for ln in raw_lines]
    if not hasattr(model, "alphabet"):
        return LineBatches(lines, **kwargs)
    if texts is None:
        raise ValueError("a synthesis model needs the lines' texts")
    return TextLineBatches(lines, [model.alphabet.encode(t, substitute=True) for t in texts], **kwargs)


class TextStreams(keras.utils.PyDataset):
    """Truncated backprop through time over one long symbol sequence (Graves sec. 3.2).

    The corpus is cut into ``batch_size`` contiguous streams; batch i holds the
    i-th ``seq_length`` symbols of every stream, so a state carried from batch
    i to i+1 continues the same text. ``reset`` (B, 1) is 1 where the carried
    state must be zeroed: at the start of the corpus and every ``reset_every``
    sequences. Sequences are never shuffled. An epoch is ``steps_per_epoch``
    batches (default: one pass); later epochs continue through the corpus, so a
    resumed run sees the same stream.
    """

    def __init__(self, ids, batch_size=32, seq_length=100, reset_every=None, steps_per_epoch=None, **kwargs):
        super().__init__(**kwargs)
        ids = np.asarray(ids, np.int32)
        per_stream = (len(ids) - 1) // batch_size
        self.batches_per_pass = per_stream // seq_length
        if self.batches_per_pass < 1:
            raise ValueError(
                f"{len(ids)} symbols are too few for {batch_size} streams of {seq_length}-symbol sequences; "
                "use a smaller --batch-size or --seq-length"
            )
        starts = np.arange(batch_size)[:, None] * per_stream
        self.inputs = ids[starts + np.arange(per_stream)[None, :]]
        self.targets = ids[starts + 1 + np.arange(per_stream)[None, :]]
        self.batch_size, self.seq_length = batch_size, seq_length
        self.reset_every = reset_every
        self.steps_per_epoch = steps_per_epoch or self.batches_per_pass
        self.epoch = 0

    def __len__(self):
        return self.steps_per_epoch

    def on_epoch_end(self):
        self.epoch += 1

    def position(self, i: int) -> int:
        return (self.epoch * self.steps_per_epoch + i) % self.batches_per_pass

    def __getitem__(self, i):
        p = self.position(i)
        t = slice(p * self.seq_length, (p + 1) * self.seq_length)
        reset = p == 0 or bool(self.reset_every and p % self.reset_every == 0)
        flags = np.full((self.batch_size, 1), float(reset), np.float32)
        return (self.inputs[:, t], flags), self.targets[:, t]
