"""The character set of a synthesis model, built from its training transcriptions.

Index 0 is padding; characters are 1..K in sorted order. The alphabet (with the
count of each character in the training text) is part of the model's config,
so text is always encoded the way the model was trained.
"""

from __future__ import annotations

from collections import Counter

import numpy as np


class UnknownCharacters(ValueError):
    """Text holds characters the model never saw; the message lists them and the fix."""


class Alphabet:
    def __init__(self, chars: str, counts: dict[str, int] | None = None):
        if len(set(chars)) != len(chars):
            raise ValueError("alphabet characters must be unique")
        self.chars = "".join(sorted(chars))
        self.counts = dict(counts or {})
        self.index = {c: i + 1 for i, c in enumerate(self.chars)}

    @classmethod
    def from_texts(cls, texts) -> "Alphabet":
        counts = Counter()
        for t in texts:
            counts.update(t)
        return cls("".join(counts), dict(counts))

    def __len__(self) -> int:
        return len(self.chars)

    def unknown(self, text: str) -> list[str]:
        return sorted({c for c in text if c not in self.index})

    def substitute(self, text: str, replacement: str = " ") -> str:
        """Replace unknown characters: a case swap when the model knows the other case, else ``replacement``."""
        out = []
        for c in text:
            if c in self.index:
                out.append(c)
            elif c.swapcase() in self.index:
                out.append(c.swapcase())
            else:
                out.append(replacement)
        return "".join(out)

    def encode(self, text: str, substitute: bool = False) -> np.ndarray:
        if not text or not text.strip():
            raise ValueError("the text is empty: give at least one character to write")
        if substitute:
            text = self.substitute(text)
        missing = self.unknown(text)
        if missing:
            shown = " ".join(repr(c) for c in missing)
            raise UnknownCharacters(
                f"the model cannot write {shown}: it knows only {self.chars!r}. "
                "Rewrite the text, or pass substitute=True (--substitute) to replace unknown characters "
                "by their other case or a space."
            )
        return np.asarray([self.index[c] for c in text], np.int32)

    def decode(self, ids) -> str:
        return "".join(self.chars[i - 1] for i in ids if i > 0)

    def get_config(self) -> dict:
        return {"chars": self.chars, "counts": self.counts}
