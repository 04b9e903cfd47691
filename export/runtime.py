"""Sampling from an exported folder with numpy and onnxruntime only (no TensorFlow, no Keras).

    from export.runtime import load
    model = load("saved_models/iam-prediction")          # or any `zoo export` folder
    strokes = model.sample(steps=700, count=4, bias=0.5, seed=1)   # (4, 700, 3) raw pen offsets
    writer = load("saved_models/iam-synthesis")
    lines = writer.write(["Hello world"], bias=1.0, seed=0)        # one (N, 3) array per line
    lm = load("runs/text/preset")                                  # a text model
    for piece in lm.sample_text(prime="The ", length=200, temperature=0.8, seed=0):
        print(piece, end="")

The samplers here are engines of the one numpy driver (``zoo.sampling.driver``,
numpy only): the API and the strokes (the text) are those of
``zoo.sampling.handwriting`` (``zoo.sampling.text``), with the same noise from
the same seed, because the graphs are exports of the same loop
(``zoo.sampling.loops``). The whole sampling loop runs inside onnxruntime
(``loop.onnx``; text: in chunks of symbols, so it still streams); the step
graph (``model.onnx``) reads a prime and serves callers that drive the
network themselves.
``precision="int8"`` samples with the int8 graphs (``loop.int8.onnx``,
``model.int8.onnx``) that ``zoo export --int8`` writes: faster, approximate
(the strokes / text differ from float's for the same seed).

On a machine with ``onnxruntime-gpu`` (installed *instead of* ``onnxruntime``)
and a GPU, sessions use the CUDAExecutionProvider; otherwise the CPU, with
``threads`` intra-op threads (default: ``$ZOO_ORT_THREADS``, else
``default_threads``: one thread for small graphs, every core up to 4 for large ones).
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import onnxruntime as ort

from zoo.data.alphabet import Alphabet
from zoo.data.text import Vocabulary
from zoo.sampling import driver

METADATA, STEP_FILE, LOOP_FILE, STYLES = "metadata.json", "model.onnx", "loop.onnx", "styles.npz"
EXPORT_COMMAND = "python -m zoo export --model PRESET --format onnx --out FOLDER"
INT8_COMMAND = "python -m zoo export --model PRESET --format all --int8 --out FOLDER"
PRECISIONS = driver.PRECISIONS
# The layout of the exported graphs this runtime drives (export.graphs.FORMAT); an export of
# another format is not current and is made again by `zoo export`.
FORMAT = 2

RUNTIMES: dict = {}


class ExportNotFound(FileNotFoundError):
    """The folder holds no usable ONNX export; the message says how to make one."""


def runtime(kind: str):
    """Register a sampler class for exported models of ``kind`` (metadata export.runtime.kind)."""

    def register(cls):
        RUNTIMES[kind] = cls
        return cls

    return register


def has_onnx(folder: str, precision: str = "float32") -> bool:
    """Whether ``folder`` carries an ONNX export this runtime can load (of graphs in ``precision``)."""
    try:
        read_export(folder, precision)
        return True
    except ExportNotFound:
        return False


def graph_files(entry: dict, precision: str = "float32") -> dict:
    """{"step": ..., "loop": ...} of the export entry's graphs in ``precision`` (float32 or int8)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} (got {precision!r})")
    return entry["onnx"]["graphs"] if precision == "float32" else entry["onnx"].get("int8", {}).get("graphs")


def read_export(folder: str, precision: str = "float32") -> dict:
    """metadata.json's ``export`` entry, after checking the ONNX files it names (in ``precision``) are there."""
    meta_path = os.path.join(folder, METADATA)
    if not os.path.isfile(meta_path):
        raise ExportNotFound(f"{folder} is not an exported model folder: it has no {METADATA}. Make one with: {EXPORT_COMMAND}")
    try:
        with open(meta_path) as f:
            entry = json.load(f).get("export", {})
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportNotFound(f"{meta_path} is not valid JSON ({exc}); export again with: {EXPORT_COMMAND}") from exc
    if "onnx" not in entry or "runtime" not in entry:
        raise ExportNotFound(f"{folder} has no ONNX export recorded in {METADATA}; make one with: {EXPORT_COMMAND}")
    if entry["runtime"].get("format", 1) != FORMAT:
        raise ExportNotFound(f"{folder} holds an export of an older layout (format {entry['runtime'].get('format', 1)}, this runtime drives {FORMAT}); export again with: {EXPORT_COMMAND}")
    graphs = graph_files(entry, precision)
    command = EXPORT_COMMAND if precision == "float32" else INT8_COMMAND
    if graphs is None:
        raise ExportNotFound(f"{folder} has no int8 graphs (loop.int8.onnx); make them with: {command}")
    for role in graphs:
        path = os.path.join(folder, graphs[role]["file"])
        if not os.path.isfile(path):
            raise ExportNotFound(f"{path} is missing; export again with: {command}")
    return entry


def file_sha256(path: str) -> str:
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def current_export(folder: str, precision: str = "float32") -> bool:
    """Whether ``folder`` carries an ONNX export (in ``precision``) made from the weights it holds now
    (a preset retrained or replaced after its export is not current)."""
    try:
        entry = read_export(folder, precision)
    except ExportNotFound:
        return False
    weights = os.path.join(folder, "model.weights.h5")
    return not os.path.isfile(weights) or entry.get("weights_sha256") == file_sha256(weights)


# Measured on 2 cores with nothing else running (whole-loop graph, ms per step, 1 vs 2 threads):
# 3x400 synthesis (15 MB float, 3.9 MB int8): float b1 1.02 vs 0.64, b32 5.46 vs 3.70; int8 b1
# 0.263 vs 0.269, b32 3.58 vs 1.82. 3x128 (2.1 MB float, 0.57 MB int8): float b1 0.27 vs 0.25-0.28,
# int8 b1 0.147 vs 0.256. Small graphs are bound by per-op overhead, which a second thread adds to;
# large ones by their matmuls, which threads split.
LARGE_GRAPH_BYTES = 3_000_000


def default_threads(path: str | None = None) -> int:
    """``$ZOO_ORT_THREADS``, else 1 for a graph file under LARGE_GRAPH_BYTES, else every core up to 4."""
    if "ZOO_ORT_THREADS" in os.environ:
        return int(os.environ["ZOO_ORT_THREADS"])
    if path is None or not os.path.isfile(path) or os.path.getsize(path) < LARGE_GRAPH_BYTES:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 4))


def providers() -> list[str]:
    """CUDA when onnxruntime-gpu sees a GPU, else the CPU."""
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session(path: str, threads: int | None = None, provider_list=None, command: str = EXPORT_COMMAND) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or default_threads(path)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(path, options, providers=provider_list or providers())
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
        raise ExportNotFound(f"onnxruntime cannot load {path} ({exc}); export again with: {command}") from exc


def load(folder: str, threads: int | None = None, provider_list=None, precision: str = "float32"):
    """The sampler of an exported folder (a preset name under saved_models/ works too).

    ``precision="int8"`` loads the int8 graphs written by ``zoo export --int8``
    (ExportNotFound, naming that command, when the folder has none)."""
    if not os.path.isdir(folder):
        shipped = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models", folder)
        if os.path.isdir(shipped):
            folder = shipped
        else:
            raise ExportNotFound(f"no folder {folder!r} (nor a shipped preset of that name)")
    entry = read_export(folder, precision)
    kind = entry["runtime"]["kind"]
    if kind not in RUNTIMES:
        raise ExportNotFound(f"{folder} holds a {kind!r} model, which this runtime cannot sample (it knows {', '.join(sorted(RUNTIMES))})")
    return RUNTIMES[kind](folder, entry, threads, provider_list, precision)


class OnnxModel:
    """An engine of zoo.sampling.driver over an exported folder: onnxruntime sessions of the
    step graph and the whole-loop graph (float32, or the int8 copies with ``precision="int8"``)."""

    def __init__(self, folder: str, entry: dict, threads: int | None = None, provider_list=None, precision: str = "float32"):
        t0 = time.perf_counter()
        self.folder = folder
        self.entry = entry
        self.info = entry["runtime"]
        self.kind = self.info["kind"]
        self.precision = precision
        graphs = graph_files(entry, precision)
        command = EXPORT_COMMAND if precision == "float32" else INT8_COMMAND
        self.step_session = session(os.path.join(folder, graphs["step"]["file"]), threads, provider_list, command)
        self.loop_session = session(os.path.join(folder, graphs["loop"]["file"]), threads, provider_list, command) if "loop" in graphs else None
        self.offset_mean = np.asarray(self.info.get("offset_mean", (0.0, 0.0)), np.float32)  # handwriting kinds
        self.offset_std = np.asarray(self.info.get("offset_std", (1.0, 1.0)), np.float32)
        self.alphabet, self.styles, self.default_style = None, {}, None
        self.load_seconds = time.perf_counter() - t0

    @staticmethod
    def _run(sess, feeds: dict) -> dict:
        names = [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(names, feeds)))

    def zero_state(self, count: int) -> dict:
        return {name: np.zeros([count if d == "batch" else d for d in shape], np.float32) for name, shape in self.info["state"].items()}

    def step(self, x, state: dict, noise, bias: float = 0.0, **extra) -> dict:
        """One step: the distribution parameters, the sampled ``point`` and the new state (``<name>_next``)."""
        return self._run(self.step_session, {"x": x, **state, **extra, "noise": noise, "bias": np.asarray(bias, np.float32)})

    def strokes_loop(self, x, state, noise, bias, caps, text=None):
        """The exported zoo.sampling.loops.strokes_loop: (points (T', B, 3), phis or None, ends (B,))."""
        feeds = {"x": np.asarray(x, np.float32), **state, "noise": noise, "bias": np.asarray(bias, np.float32), "caps": np.asarray(caps, np.int32)}
        if text is not None:
            feeds["text"] = np.asarray(text, np.int32)
        out = self._run(self.loop_session, feeds)
        return out["points"], out.get("phis"), out["ends"]

    def teacher_force(self, inputs, state, text):
        """Teacher-force ``inputs`` (B, T, 3) through the step graph: the state after them."""
        still = np.zeros((inputs.shape[0], 4), np.float32)
        for t in range(inputs.shape[1]):
            out = self.step(np.ascontiguousarray(inputs[:, t]), state, still, 0.0, text=np.asarray(text, np.int32))
            state = {k: out[f"{k}_next"] for k in state}
        return state


@runtime("prediction")
class PredictionModel(OnnxModel):
    def sample(self, steps: int = 700, count: int = 1, bias: float = 0.0, seed: int = 0) -> np.ndarray:
        """``count`` samples of ``steps`` points: raw offsets (count, steps, 3), as zoo.sampling.handwriting.sample_unconditional."""
        return driver.sample_strokes(self, steps=steps, count=count, bias=bias, seed=seed)


@runtime("synthesis")
class SynthesisModel(OnnxModel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.alphabet = Alphabet(**self.info["alphabet"])
        path = os.path.join(self.folder, STYLES)
        if os.path.isfile(path):  # the format of zoo.presets.save_styles
            with np.load(path) as z:
                for key in z.files:
                    if key.startswith("offsets/"):
                        name = key.split("/", 1)[1]
                        self.styles[name] = (z[key], str(z[f"text/{name}"]))
                self.default_style = str(z["default"]) if "default" in z.files else None

    def write(self, lines, bias: float = driver.WRITE_BIAS, seed: int = 0, **kwargs):
        """As zoo.sampling.handwriting.write (same keywords): raw offsets per line, the same strokes for the same seed."""
        return driver.write(self, lines, bias=bias, seed=seed, **kwargs)


@runtime("recognition")
class RecognitionModel(OnnxModel):
    """A handwriting recognizer: its one graph (``model.onnx``) maps normalised lines to CTC logits;
    zoo.reading decodes them in numpy (greedy, or a beam search)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.alphabet = Alphabet(**self.info["alphabet"])

    def recognize(self, x, lengths):
        """Logits (B, frames, 1 + C) of normalised lines x (B, T, 3) of ``lengths`` points, and each line's frame count."""
        out = self._run(self.step_session, {"x": np.asarray(x, np.float32), "lengths": np.asarray(lengths, np.int32)})
        return out["logits"], out["frames"]

    def read(self, offsets, beam_width: int = 0) -> list[str]:
        """The text of each line of raw pen offsets, as zoo.reading.read."""
        from zoo.reading import read

        return read(self, offsets, beam_width)


@runtime("text")
class TextModel(OnnxModel):
    """A language model: symbols drawn by inverting softmax(logits / temperature)'s CDF, one uniform per symbol."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = None
        path = os.path.join(self.folder, "config.json")
        if os.path.isfile(path):  # the preset's own vocabulary
            with open(path) as f:
                config = json.load(f).get("config", {}).get("vocabulary")
        config = config or self.info.get("vocabulary")
        if config is None:
            raise ExportNotFound(f"{self.folder} has neither a config.json nor a vocabulary in {METADATA}; export the preset folder again with: {EXPORT_COMMAND}")
        self.vocabulary = Vocabulary.from_config(config)

    def step(self, ids, state: dict, u, temperature: float = 1.0) -> dict:
        """One symbol: ids (B,) + state -> ``logits`` (B, V), ``next_id`` drawn with uniforms ``u`` (B,), ``h_next``, ``c_next``."""
        feeds = {"ids": np.asarray(ids, np.int32), **state, "u": np.asarray(u, np.float32), "temperature": np.asarray(temperature, np.float32)}
        return self._run(self.step_session, feeds)

    def text_loop(self, prime, state, uniforms, temperature):
        """The exported zoo.sampling.loops.text_loop: read ``prime`` (B, P >= 1), draw one symbol per row of ``uniforms`` (L, B)."""
        prime = np.asarray(prime, np.int32)
        state = state if state is not None else self.zero_state(prime.shape[0])
        feeds = {"prime": prime, **state, "uniforms": np.asarray(uniforms, np.float32), "temperature": np.asarray(temperature, np.float32)}
        out = self._run(self.loop_session, feeds)
        return out["ids"], {k: out[f"{k}_final"] for k in state}

    def sample_text(self, prime: str = "", length: int = 500, temperature: float = 1.0, seed: int = 0):
        """As zoo.sampling.text.sample_text: yield the continuation of ``prime`` piece by piece, the same text for the same seed."""
        return driver.sample_text(self, prime=prime, length=length, temperature=temperature, seed=seed)
