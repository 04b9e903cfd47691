"""Text corpora of Graves (2013, sec. 3) as symbol ids: bytes, characters or words.

- Penn Treebank, Mikolov's preprocessing: words (``ptb.train.txt``, 10k words,
  ``<unk>`` kept, every line ends with ``<eos>``) and characters
  (``ptb.char.train.txt``: one character per token, ``_`` for a space). The
  character files read back as plain text with spaces and newlines restored,
  so a bit per character here is a bit per character of that text.
- Hutter Prize Wikipedia (enwik8): the first 10^8 bytes of a Wikipedia dump,
  read as bytes. Graves trained on the first 96M and validated on the last 4M.
- text8: 10^8 lowercase letters and spaces (90M / 5M / 5M by convention).
- Any UTF-8 file, by character, byte or word.
"""

from __future__ import annotations

import os
import zipfile
from collections import Counter

import numpy as np

LEVELS = ("char", "byte", "word")
EOS, UNK = "<eos>", "<unk>"


class TextDataError(ValueError):
    """A text file that cannot be read as the asked-for corpus."""


def _read_bytes(path: str, member: str | None = None) -> bytes:
    """A file's bytes, or one member of a .zip archive."""
    if not os.path.isfile(path):
        raise TextDataError(f"{path}: no such file. Check the path, or fetch the corpus with `python -m zoo download NAME`.")
    if path.endswith(".zip"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
                name = member or (names[0] if len(names) == 1 else None)
                if name not in names:
                    raise TextDataError(f"{path}: expected a member {member!r}, the archive holds {names[:5]}")
                return z.read(name)
        except zipfile.BadZipFile as exc:
            raise TextDataError(f"{path} is not a readable zip archive ({exc}); delete it and download it again.") from None
    with open(path, "rb") as f:
        return f.read()


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TextDataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); read it with --level byte.") from None


def read_ptb_chars(path: str) -> str:
    """Mikolov's ``ptb.char.*.txt`` -> the text with spaces restored, one sentence per line."""
    lines = []
    for line in _decode(_read_bytes(path), path).splitlines():
        tokens = line.split()
        if tokens:
            lines.append("".join(" " if t == "_" else t for t in tokens))
    if not lines:
        raise TextDataError(f"{path} holds no text")
    return "\n".join(lines) + "\n"


def read_ptb_words(path: str) -> list[str]:
    """Mikolov's ``ptb.*.txt`` -> word tokens, ``<eos>`` after every line (counted as a word)."""
    words = []
    for line in _decode(_read_bytes(path), path).splitlines():
        tokens = line.split()
        if tokens:
            words += tokens + [EOS]
    if not words:
        raise TextDataError(f"{path} holds no words")
    return words


def read_corpus(path: str, level: str = "char", member: str | None = None):
    """Any file (or zip member) as symbols: str for char, bytes for byte, a word list for word.

    PTB's character files are recognised by name and get their spaces back."""
    if level not in LEVELS:
        raise TextDataError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    base = os.path.basename(path)
    if level == "char" and base.startswith("ptb.char."):
        return read_ptb_chars(path)
    if level == "word" and base.startswith("ptb.") and not base.startswith("ptb.char."):
        return read_ptb_words(path)
    data = _read_bytes(path, member)
    if not data:
        raise TextDataError(f"{path} is empty")
    if level == "byte":
        return data
    text = _decode(data, path)
    if level == "char":
        return text
    words = []
    for line in text.splitlines():
        if line.split():
            words += line.split() + [EOS]
    return words


# Conventional splits of whole-corpus files, in symbols: (end of train, end of validation).
# enwik8 (Graves sec. 3.2): "the first 96M bytes ... used to train the network,
# while the remaining 4M were used for validation".
SPLITS = {"enwik8": (96_000_000, 100_000_000)}


def split_corpus(symbols, name: str, path: str = "the train file") -> tuple:
    """(train, validation) of a whole-corpus file by its named split (`SPLITS`)."""
    train_end, valid_end = SPLITS[name]
    if len(symbols) < valid_end:
        raise TextDataError(
            f"{path} holds {len(symbols):,} symbols; {name}'s split (first {train_end:,} train, "
            f"next {valid_end - train_end:,} validation) needs {valid_end:,}. Train on the file from "
            f"`python -m zoo download {name}`, or name a validation file with --valid-file."
        )
    return symbols[:train_end], symbols[train_end:valid_end]


class Vocabulary:
    """Symbols <-> ids. Id 0 is the unknown symbol, so text outside the training
    set still encodes (and is counted); byte vocabularies cover all 256 bytes."""

    def __init__(self, symbols, level: str = "char"):
        if level not in LEVELS:
            raise TextDataError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
        self.level = level
        self.symbols = list(symbols)
        self.index = {s: i + 1 for i, s in enumerate(self.symbols)}

    @classmethod
    def build(cls, corpus, level: str = "char", max_size: int | None = None) -> "Vocabulary":
        if level == "byte":
            return cls(list(range(256)), "byte")
        counts = Counter(corpus)
        counts.pop(UNK, None)  # PTB's own <unk> is our id 0
        ranked = sorted(counts, key=lambda s: (-counts[s], s))
        return cls(ranked[: max_size - 1] if max_size else ranked, level)

    def __len__(self) -> int:
        return len(self.symbols) + 1

    def encode(self, corpus) -> np.ndarray:
        if self.level == "byte" and isinstance(corpus, (bytes, bytearray)):
            return np.frombuffer(bytes(corpus), np.uint8).astype(np.int32) + 1
        if self.level == "byte" and isinstance(corpus, str):
            return self.encode(corpus.encode("utf-8"))
        if self.level == "word" and isinstance(corpus, str):
            corpus = corpus.split()
        return np.fromiter((self.index.get(s, 0) for s in corpus), np.int32, count=len(corpus))

    def unknown_count(self, ids: np.ndarray) -> int:
        return int(np.sum(ids == 0))

    def decode(self, ids) -> str:
        if self.level == "byte":
            return bytes(int(i) - 1 for i in ids if i > 0).decode("utf-8", errors="replace")
        # The unknown symbol reads as <unk> among words, as U+FFFD among characters.
        unknown = UNK if self.level == "word" else "\ufffd"
        pieces = [unknown if i == 0 else self.symbols[int(i) - 1] for i in ids]
        if self.level == "word":
            lines = " ".join(pieces).split(EOS)
            return "\n".join(line.strip() for line in lines)
        return "".join(pieces)

    def get_config(self) -> dict:
        return {"symbols": self.symbols if self.level != "byte" else [], "level": self.level}

    @classmethod
    def from_config(cls, config: dict) -> "Vocabulary":
        if config["level"] == "byte":
            return cls(list(range(256)), "byte")
        return cls(config["symbols"], config["level"])

