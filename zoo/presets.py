"""Preset folders, KerasHub style: config.json, model.weights.h5, metadata.json, README.md.

``from_preset("iam-prediction")`` loads a shipped model from ``saved_models/``;
a path to any folder with the same files works too.
"""

from __future__ import annotations

import json
import os

import numpy as np

PRESETS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models")
CONFIG, WEIGHTS, METADATA, CARD = "config.json", "model.weights.h5", "metadata.json", "README.md"


def list_presets() -> list[str]:
    if not os.path.isdir(PRESETS_DIR):
        return []
    return sorted(d for d in os.listdir(PRESETS_DIR) if os.path.isfile(os.path.join(PRESETS_DIR, d, CONFIG)))


def preset_path(name_or_path: str) -> str:
    if os.path.isfile(os.path.join(name_or_path, CONFIG)):
        return name_or_path
    candidate = os.path.join(PRESETS_DIR, name_or_path)
    if os.path.isfile(os.path.join(candidate, CONFIG)):
        return candidate
    raise FileNotFoundError(
        f"no preset {name_or_path!r}: it is neither a folder with {CONFIG} nor a shipped preset "
        f"(shipped: {', '.join(list_presets()) or 'none'})"
    )


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
    with open(os.path.join(folder, CONFIG)) as f:
        config = json.load(f)
    model = keras.saving.deserialize_keras_object(config)
    if not model.built:
        model.build()
    model.load_weights(os.path.join(folder, WEIGHTS))
    styles = load_styles(folder)
    if styles:
        model.styles = styles  # named primes for write(..., style=NAME)
    model.preset_folder = folder  # samplers look here for an ONNX export (export/runtime.py)
    return model


def save_preset(model, folder: str, metadata: dict, card: str | None = None) -> None:
    """Write the four files of a preset; each is written to a temporary name and renamed."""
    import keras

    os.makedirs(folder, exist_ok=True)

    def write_text(name, text):
        tmp = os.path.join(folder, f".{name}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(folder, name))

    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)  # a preset is for inference; training resumes from checkpoints
    write_text(CONFIG, json.dumps(config, indent=1))
    # A compiled model's weights file also holds its optimiser's slots (4x the
    # size under Graves' RMSProp); a fresh copy holds the weights alone.
    bare = type(model).from_config(model.get_config())
    bare.build()
    bare.set_weights(model.get_weights())
    tmp = os.path.join(folder, "tmp.weights.h5")
    bare.save_weights(tmp)
    os.replace(tmp, os.path.join(folder, WEIGHTS))
    write_text(METADATA, json.dumps(metadata, indent=1))
    if card is not None:
        write_text(CARD, card)


STYLES = "styles.npz"


def save_styles(folder: str, styles: dict) -> None:
    """Named styles of a synthesis preset: {name: (raw offsets (N, 3), text)} -> styles.npz."""
    arrays = {}
    for name, (offsets, text) in styles.items():
        arrays[f"offsets/{name}"] = np.asarray(offsets, np.float32)
        arrays[f"text/{name}"] = np.asarray(text)
    tmp = os.path.join(folder, "styles.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, os.path.join(folder, STYLES))


def load_styles(name_or_path: str) -> dict:
    path = os.path.join(preset_path(name_or_path), STYLES)
    if not os.path.isfile(path):
        return {}
    with np.load(path) as z:
        names = [k.split("/", 1)[1] for k in z.files if k.startswith("offsets/")]
        return {n: (z[f"offsets/{n}"], str(z[f"text/{n}"])) for n in sorted(names)}
