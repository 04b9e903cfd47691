"""Preset folders, KerasHub style: config.json, model.weights.h5, metadata.json, README.md.

``from_preset("iam-prediction")`` loads a shipped model: from the checkout's
``saved_models/``, the presets packaged in the wheel, the download cache, or a
download named by the registry (``zoo.hub``, which also takes a folder, a
training run, ``https://`` / ``file://`` archives and ``hf://owner/repo@rev``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import zipfile
import zlib

import numpy as np

from zoo import atomic

PRESETS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models")
CONFIG, WEIGHTS, METADATA, CARD = "config.json", "model.weights.h5", "metadata.json", "README.md"


def list_presets() -> list[str]:
    """Names of the presets on this machine without a download: the checkout's saved_models/ and the packaged ones."""
    from zoo import hub

    names = set()
    for root in (PRESETS_DIR, hub.packaged_dir()):
        if root and os.path.isdir(root):
            names |= {d for d in os.listdir(root) if not d.startswith(".") and os.path.isfile(os.path.join(root, d, CONFIG))}
    return sorted(names)


def preset_path(name_or_path: str, download: bool = True) -> str:
    """The local folder of a preset: a folder, a training run (its preset/), saved_models/, the packaged
    presets, the download cache, then a download (zoo.hub.resolve; raises FileNotFoundError if none)."""
    from zoo import hub

    return hub.resolve(name_or_path, download=download)


def load_metadata(name_or_path: str) -> dict:
    path = os.path.join(preset_path(name_or_path), METADATA)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def from_preset(name_or_path: str):
    """Build the model of a preset folder and load its weights."""
    import keras  # imported here so that finding a preset (preset_path) stays light for the onnxruntime path

    import zoo.models  # noqa: F401  (registers the model classes)

    folder = preset_path(name_or_path)
    path = os.path.join(folder, CONFIG)
    try:
        with open(path) as f:
            config = json.load(f)
        model = keras.saving.deserialize_keras_object(config)
        if not model.built:
            model.build()
    except Exception as exc:  # a truncated or edited config.json
        raise _damaged(path, folder, exc) from exc
    path = os.path.join(folder, WEIGHTS)
    if not os.path.isfile(path):
        raise _damaged(path, folder, FileNotFoundError("the file is missing"))
    try:
        model.load_weights(path)
    except Exception as exc:  # h5py's OSError for a truncated copy, Keras' ValueError for another model's weights
        raise _damaged(path, folder, exc) from exc
    styles, default = _read_styles(folder)
    if styles:
        model.styles = styles  # named primes for write(..., style=NAME)
        model.default_style = default  # write(..., style=None) primes with it
    from zoo.sampling.engines import mark_loaded

    mark_loaded(model, folder)  # the engine choice looks here for a current ONNX export (zoo.sampling.engines)
    return model


def _damaged(path: str, folder: str, exc: Exception) -> ValueError:
    name = os.path.basename(os.path.normpath(folder))
    return ValueError(
        f"{path} is damaged or incomplete ({type(exc).__name__}: {exc}), so the preset {folder} cannot be loaded. "
        f"Restore the folder: a shipped preset with `git checkout -- saved_models/{name}` (or by reinstalling the package), "
        "a downloaded one by deleting the folder (the next use fetches it again), a trained one by running "
        "the same `python -m zoo train ... --out RUN` again (it rewrites RUN/preset from the run's checkpoint)."
    )


def _rename_exchange(a: str, b: str) -> bool:
    """Swap two existing paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def replace_folder(new: str, folder: str) -> None:
    """Put the finished folder ``new`` where ``folder`` is (or is not yet), then delete the old one.

    Where the kernel can swap two folders in one step it does; elsewhere the old
    folder is renamed aside first (a kill in between leaves both whole, beside each other)."""
    if not os.path.isdir(folder):
        os.rename(new, folder)
        return
    if _rename_exchange(new, folder):
        shutil.rmtree(new)  # it now holds the old folder
        return
    old = f"{folder}.old-{os.getpid()}"
    os.rename(folder, old)
    os.rename(new, folder)
    shutil.rmtree(old, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


@contextlib.contextmanager
def rewriting(folder: str, keep: bool = True):
    """Yield a temporary folder beside ``folder`` to write a whole preset into; on success it replaces ``folder``.

    ``keep``: start from a copy of what ``folder`` holds (adding files to a preset).
    An error (or a kill) leaves ``folder`` as it was. A non-empty folder that is not
    a preset is refused rather than copied or replaced."""
    folder = os.path.realpath(folder)
    parent, name = os.path.split(folder)
    if os.path.isdir(folder) and os.listdir(folder) and not any(os.path.isfile(os.path.join(folder, n)) for n in (CONFIG, METADATA)):
        raise ValueError(f"{folder} holds files but no preset ({CONFIG} or {METADATA}): give a new or empty folder, or a preset's own")
    os.makedirs(parent, exist_ok=True)
    prefix = f".{name}.tmp-"
    for leftover in os.listdir(parent):  # from a writer that was killed
        if leftover.startswith(prefix) and leftover[len(prefix) :].isdigit() and not _pid_alive(int(leftover[len(prefix) :])):
            shutil.rmtree(os.path.join(parent, leftover), ignore_errors=True)
    tmp = os.path.join(parent, f"{prefix}{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    if keep and os.path.isdir(folder):
        shutil.copytree(folder, tmp, symlinks=True)
    else:
        os.makedirs(tmp)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_folder(tmp, folder)


def save_preset(model, folder: str, metadata: dict, card: str | None = None) -> None:
    """Write the four files of a preset into a temporary folder and swap it in whole.

    Other files already in ``folder`` (styles, exports) are kept; a kill at any
    moment leaves either the old preset or the new one."""
    import keras

    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)  # a preset is for inference; training resumes from checkpoints
    # A compiled model's weights file also holds its optimiser's slots (4x the
    # size under Graves' RMSProp); a fresh copy holds the weights alone.
    bare = type(model).from_config(model.get_config())
    bare.build()
    bare.set_weights(model.get_weights())
    with rewriting(folder) as tmp:

        def write_text(name, text):
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)

        write_text(CONFIG, json.dumps(config, indent=1))
        bare.save_weights(os.path.join(tmp, WEIGHTS))
        write_text(METADATA, json.dumps(metadata, indent=1))
        if card is not None:
            write_text(CARD, card)


STYLES = "styles.npz"


def save_styles(folder: str, styles: dict, default: str | None = None) -> None:
    """Named styles of a synthesis preset: {name: (raw offsets (N, 3), text)} -> styles.npz;
    ``default``: the style `write` primes with when none is asked for (`default_style`)."""
    if default is not None and default not in styles:
        raise ValueError(f"the default style {default!r} is not one of the styles: {', '.join(styles)}")
    arrays = {}
    for name, (offsets, text) in styles.items():
        arrays[f"offsets/{name}"] = np.asarray(offsets, np.float32)
        arrays[f"text/{name}"] = np.asarray(text)
    if default is not None:
        arrays["default"] = np.asarray(default)
    with atomic.replacing(os.path.join(folder, STYLES)) as tmp:
        np.savez_compressed(tmp, **arrays)


def _read_styles(name_or_path: str) -> tuple[dict, str | None]:
    """styles.npz in one read: ({name: (raw offsets, text)}, the default style's name or None)."""
    path = os.path.join(preset_path(name_or_path), STYLES)
    if not os.path.isfile(path):
        return {}, None
    try:
        with np.load(path) as z:
            names = [k.split("/", 1)[1] for k in z.files if k.startswith("offsets/")]
            styles = {n: (z[f"offsets/{n}"], str(z[f"text/{n}"])) for n in sorted(names)}
            return styles, (str(z["default"]) if "default" in z.files else None)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise _damaged(path, os.path.dirname(path), exc) from exc


def load_styles(name_or_path: str) -> dict:
    """The named styles of a synthesis preset: {name: (raw offsets (N, 3), text)} ({} if it has none)."""
    return _read_styles(name_or_path)[0]


def default_style(name_or_path: str) -> str | None:
    """The style a synthesis preset writes in when none is asked for, or None (unprimed)."""
    return _read_styles(name_or_path)[1]
