"""The engines that run the sampling loops, and the one place that chooses between them.

``KerasEngine`` compiles the loops of zoo.sampling.loops over a model in
memory; ``export.runtime``'s engines run the exported graphs of the same loops
in onnxruntime. Both speak the interface the numpy driver (zoo.sampling.driver)
expects, with the state in the exported graphs' flat layout ({"h": (N, B, H),
...}), so the driver, and the strokes for a seed, are the same on either.

`choose` decides: onnxruntime where a preset folder carries an export of the
current format made from the weights on disk, and the model in memory (if any)
still holds those weights; Keras otherwise, or where onnxruntime is missing.
"""

from __future__ import annotations

import hashlib

import numpy as np

from zoo.sampling.driver import BACKENDS, PRECISIONS


def weights_fingerprint(model) -> str:
    """A digest of every weight the model holds now (cheap: ~20 ms for 3.7M weights)."""
    digest = hashlib.sha1()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


def mark_loaded(model, folder: str) -> None:
    """Remember the preset folder a model was loaded from, and the weights it had then."""
    model.preset_folder = folder
    model.preset_fingerprint = weights_fingerprint(model)


def _onnxruntime_missing() -> str | None:
    try:
        import onnxruntime  # noqa: F401  (only whether it imports)
    except ImportError as exc:
        return str(exc)
    return None


def choose(folder: str | None, backend: str = "auto", precision: str = "float32", model=None) -> str:
    """"onnx" or "keras" for sampling a preset ``folder`` (and ``model``, loaded from it, if given).

    ``auto``: onnxruntime when the folder's ONNX export is current (made from the weights on disk,
    in this runtime's format) and the model in memory still holds the weights it was loaded with,
    else Keras; ``keras``: always Keras; ``onnx``: always onnxruntime, failing with the command
    that makes the export. ``precision="int8"`` uses onnxruntime's int8 graphs (``zoo export --int8``).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)} (got {backend!r})")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} (got {precision!r})")
    if precision != "float32" and backend == "keras":
        raise ValueError(f"precision {precision!r} needs the onnxruntime backend (the int8 graphs of zoo export --int8), not keras")
    if backend == "keras":
        return "keras"
    missing = _onnxruntime_missing()
    if backend == "auto" and precision == "float32":
        if missing or not folder:
            return "keras"
        from export import runtime

        if not runtime.current_export(folder):
            return "keras"
        if model is not None and getattr(model, "preset_fingerprint", None) != weights_fingerprint(model):
            return "keras"  # fit(), set_weights() or load_weights() changed the weights since loading
        return "onnx"
    if missing:
        raise ValueError(f"backend 'onnx' needs onnxruntime, which does not import ({missing}): pip install onnxruntime, or use backend 'keras'")
    if not folder:
        raise ValueError(f"backend 'onnx' (precision {precision}) needs a model loaded with from_preset() from a folder with an ONNX export")
    from export import runtime

    if runtime.has_onnx(folder, precision) and not runtime.current_export(folder, precision):
        raise ValueError(
            f"the {precision} ONNX export in {folder} was not made from the weights the preset holds now; "
            f"export it again (python -m zoo export --model {folder} --format all{' --int8' if precision == 'int8' else ''} --out {folder}) or sample with backend 'keras'"
        )
    if model is not None and getattr(model, "preset_fingerprint", None) != weights_fingerprint(model):
        raise ValueError(
            "the model in memory no longer holds the weights its preset's ONNX export was made from (fit, set_weights or load_weights "
            "since loading): sample with backend 'keras', or save the preset and export it again"
        )
    return "onnx"


def engine_for(model, backend: str = "auto", precision: str = "float32"):
    """The engine that samples ``model`` (a Keras model from from_preset, or not) by the rule of `choose`."""
    folder = getattr(model, "preset_folder", None)
    if choose(folder, backend, precision, model) == "onnx":
        from export import runtime

        cached = getattr(model, "_ort_engine", None)
        if cached is None or cached.folder != folder or cached.precision != precision:
            cached = model._ort_engine = runtime.load(folder, precision=precision)
        return cached
    # Compiled anew when the weights changed: jax.jit keeps the weights it traced as constants.
    fingerprint = weights_fingerprint(model)
    cached = getattr(model, "_keras_engine", None)
    if cached is None or cached.fingerprint != fingerprint:
        cached = model._keras_engine = KerasEngine(model)
        cached.fingerprint = fingerprint
    return cached


class KerasEngine:
    """The sampling loops of zoo.sampling.loops compiled over a Keras model (tf.function / jax.jit)."""

    def __init__(self, model):
        from zoo import backend
        from zoo.sampling import loops

        self.model = model
        if getattr(model, "task", None) == "recognition":
            self.kind, self.alphabet, self.styles = "recognition", model.alphabet, {}
            self.offset_mean = np.asarray(model.offset_mean, np.float32)
            self.offset_std = np.asarray(model.offset_std, np.float32)
            self._logits = backend.compile_function(lambda x, lengths: model((x, lengths)), jit_compile=False)
            return
        if hasattr(model, "vocabulary"):
            self.kind, self.vocabulary = "text", model.vocabulary
        else:
            self.kind = "synthesis" if hasattr(model, "alphabet") else "prediction"
            self.offset_mean = np.asarray(model.offset_mean, np.float32)
            self.offset_std = np.asarray(model.offset_std, np.float32)
        self.alphabet = getattr(model, "alphabet", None)
        self.styles = getattr(model, "styles", {})
        self.default_style = getattr(model, "default_style", None)

        def strokes(x, state, noise, bias, caps, text):
            points, phis, ends, _ = loops.strokes_loop(model, x, model.unstack_state(state), noise, bias, caps, text)
            return points, phis, ends

        def strokes_free(x, state, noise, bias, caps):
            points, _, ends, _ = loops.strokes_loop(model, x, model.unstack_state(state), noise, bias, caps)
            return points, ends

        def read(inputs, state, text):
            _, final = model((inputs, text), initial_state=model.unstack_state(state), return_state=True)
            return model.stack_state(final)

        def text(prime, state, uniforms, temperature):
            ids, final = loops.text_loop(model, prime, model.unstack_state(state), uniforms, temperature)
            return ids, model.stack_state(final)

        compile_ = lambda fn: backend.compile_function(fn, jit_compile=False)  # noqa: E731
        self._strokes, self._strokes_free, self._read, self._text = compile_(strokes), compile_(strokes_free), compile_(read), compile_(text)

    def zero_state(self, count: int) -> dict:
        return {k: np.zeros([count if d == "batch" else d for d in shape], np.float32) for k, shape in self.model.state_shapes().items()}

    @staticmethod
    def _numpy(tree):
        from keras import ops

        if isinstance(tree, dict):
            return {k: ops.convert_to_numpy(v) for k, v in tree.items()}
        return ops.convert_to_numpy(tree)

    def teacher_force(self, inputs, state, text):
        return self._numpy(self._read(np.asarray(inputs, np.float32), state, np.asarray(text, np.int32)))

    def strokes_loop(self, x, state, noise, bias, caps, text=None):
        bias, caps = np.asarray(bias, np.float32), np.asarray(caps, np.int32)
        if text is None:
            points, ends = self._strokes_free(x, state, noise, bias, caps)
            return self._numpy(points), None, self._numpy(ends)
        points, phis, ends = self._strokes(x, state, noise, bias, caps, np.asarray(text, np.int32))
        return self._numpy(points), self._numpy(phis), self._numpy(ends)

    def recognize(self, x, lengths):
        """A recognizer's logits (B, frames, 1 + C) of normalised lines x (B, T, 3), and each line's frame count."""
        lengths = np.asarray(lengths, np.int32)
        return self._numpy(self._logits(np.asarray(x, np.float32), lengths)), self.model.frame_lengths(lengths)

    def text_loop(self, prime, state, uniforms, temperature):
        prime = np.asarray(prime, np.int32)
        state = state if state is not None else self.zero_state(prime.shape[0])
        ids, state = self._text(prime, state, np.asarray(uniforms, np.float32), np.asarray(temperature, np.float32))
        return self._numpy(ids), self._numpy(state)
