"""Files written whole or not at all: written beside their final name, synced, then renamed.

A kill at any moment leaves the old file or the new one, never half of one;
a failed write removes its temporary file. (Whole preset folders are swapped
in by `zoo.presets.rewriting`.)
"""

from __future__ import annotations

import contextlib
import json
import os

# Suffixes that readers recognise a file by (keras.Model.save wants ".keras", save_weights ".weights.h5").
_SUFFIXES = (".weights.h5", ".keras", ".npz", ".json", ".onnx", ".png")


def temporary_name(path: str) -> str:
    """A hidden name beside ``path``, unique to this process, keeping a suffix that writers check."""
    folder, name = os.path.split(path)
    suffix = next((s for s in _SUFFIXES if name.endswith(s)), "")
    return os.path.join(folder, f".{name[: len(name) - len(suffix)]}.tmp-{os.getpid()}{suffix}")


@contextlib.contextmanager
def replacing(path: str):
    """Yield a temporary path to write; once the block ends without error it is synced to disk and
    renamed to ``path`` (os.replace: atomic); on any error it is removed and ``path`` is left as it was."""
    tmp = temporary_name(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text(path: str, text: str) -> None:
    with replacing(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def write_json(path: str, obj) -> None:
    write_text(path, json.dumps(obj, indent=1))
