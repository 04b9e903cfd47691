"""SavedModel export: the model's variables and its exported functions as signatures.

Signatures (all outputs are dicts; see ``export/graphs.py``):

- ``step``: one sampling step, input + state + noise -> distribution parameters, point, new state
  (text: ids + state + uniforms + temperature -> logits, drawn id, new state)
- ``sample_loop``: the whole sampling loop over noise given as an input (as ``loop.onnx``)
- ``log_likelihood``: (inputs, targets, mask[, text]) -> log-likelihood per line, nats
- prediction ``sample``: (count, steps, bias, seed) -> strokes;
  synthesis ``write``: (text lines, bias, seed, max_steps_per_char) -> strokes, lengths;
  text ``sample``: (prime string, count, length, temperature, seed) -> ids, text.
  These draw their noise with TF's stateless generator, so their strokes are not
  numpy's for the same seed (feed numpy's noise to ``sample_loop`` for those).

Reload with ``tf.saved_model.load(folder + "/saved_model")``; no zoo code is needed.
"""

from __future__ import annotations

import os
import shutil

import tensorflow as tf

from zoo.presets import replace_folder

SAVED_MODEL_DIR = "saved_model"


def export_saved_model(model, graphs, folder: str) -> dict:
    path = os.path.join(folder, SAVED_MODEL_DIR)
    module = tf.Module()
    # Tracking the weights lets tf.saved_model.save store the variables the functions capture.
    module.weights = [w.value for w in model.weights]
    signatures = {"step": graphs.step, **({"sample_loop": graphs.loop} if graphs.loop is not None else {}), **graphs.signatures}
    for name, fn in signatures.items():
        setattr(module, name, fn)
    # Written beside the old folder and swapped in whole: a kill leaves the old SavedModel or the new one.
    tmp = f"{path}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tf.saved_model.save(module, tmp, signatures=signatures)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_folder(tmp, path)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    return {"dir": SAVED_MODEL_DIR, "signatures": sorted(signatures), "megabytes": round(size / 1e6, 2), "tensorflow": tf.__version__}
