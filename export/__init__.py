"""Export of zoo models to SavedModel and ONNX, and a numpy + onnxruntime sampler.

    from export import export_model
    export_model("iam-synthesis", "saved_models/iam-synthesis", formats=("onnx", "saved_model"))

    from export.runtime import load            # numpy + onnxruntime only
    writer = load("saved_models/iam-synthesis")
    lines = writer.write(["Hello world"], bias=1.0, seed=0)

``export_model`` needs TensorFlow; importing this package or ``export.runtime``
does not. The graphs themselves are defined per model kind in ``export/graphs.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import time

FORMATS = ("onnx", "saved_model")
METADATA, EXPORT_KEY = "metadata.json", "export"


def export_model(model, out: str, formats=FORMATS, opset: int | None = None, int8: bool = False) -> dict:
    """Export ``model`` (a Keras model, or a preset name or folder) into the folder ``out``.

    ``out`` may be the preset folder itself: the exported files join it and its
    metadata.json gains an ``export`` entry (what was exported, with which
    tf2onnx / onnx / TensorFlow versions and opset, and what the runtime needs
    to know of the model). Another folder gets the exported files, the
    metadata and, for a synthesis preset, its styles. Returns the ``export`` entry.

    ``int8``: also write int8 copies of the ONNX graphs (``model.int8.onnx``,
    ``loop.int8.onnx``; onnxruntime's dynamic quantization), recorded as
    ``export.onnx.int8`` and sampled with ``export.runtime.load(folder,
    precision="int8")``. An export without it removes int8 graphs left from
    an earlier export.
    """
    from export.graphs import graphs_for
    from zoo import presets

    source = None
    if isinstance(model, str):
        source = presets.preset_path(model)
        model = presets.from_preset(source)
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise ValueError(f"unknown export format(s) {sorted(unknown)}; choose from {', '.join(FORMATS)} or all")
    if int8 and "onnx" not in formats:
        raise ValueError("int8 graphs are quantized from the ONNX export: use --format onnx or all with --int8")
    graphs = graphs_for(model)
    entry = {"formats": list(formats), "runtime": graphs.info, "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    # Everything is written into a copy of ``out`` beside it, swapped in whole at the
    # end: a failure or a kill midway leaves the old folder (a preset stays loadable).
    with presets.rewriting(out) as work:
        if "onnx" in formats:
            from export.onnx import OPSET, export_onnx

            entry["onnx"] = export_onnx(graphs, work, opset or OPSET)
            from export.onnx import quantize_int8, remove_int8

            remove_int8(work)
            if int8:
                entry["onnx"]["int8"] = quantize_int8(work, entry["onnx"]["graphs"])
        if "saved_model" in formats:
            from export.savedmodel import export_saved_model

            entry["saved_model"] = export_saved_model(model, graphs, work)
        meta_path = os.path.join(work, METADATA)
        if os.path.isfile(meta_path):
            with open(meta_path) as f:
                meta = json.load(f)
        elif source is not None:
            meta = presets.load_metadata(source)
        else:
            meta = {"model": type(model).__name__}
        if source is not None and os.path.realpath(source) != os.path.realpath(out):
            for name in (presets.STYLES, presets.CONFIG, presets.WEIGHTS, presets.CARD):
                if os.path.isfile(os.path.join(source, name)):
                    shutil.copyfile(os.path.join(source, name), os.path.join(work, name))
        weights = os.path.join(work, presets.WEIGHTS)
        if os.path.isfile(weights):  # lets samplers tell a stale export from a current one
            from export.runtime import file_sha256

            entry["weights_sha256"] = file_sha256(weights)
        earlier = meta.get(EXPORT_KEY) or {}
        if earlier.get("weights_sha256") == entry.get("weights_sha256"):
            # A format exported earlier from these same weights stays current: exporting the other
            # one (say saved_model after onnx) must not make samplers think the ONNX graphs stale.
            for fmt in FORMATS:
                if fmt not in formats and fmt in earlier.get("formats", ()) and fmt in earlier:
                    entry["formats"].append(fmt)
                    entry[fmt] = earlier[fmt]
        meta[EXPORT_KEY] = entry
        with open(meta_path, "w") as f:
            json.dump(meta, f, indent=1)
    return entry
