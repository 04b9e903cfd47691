"""ONNX export with tf2onnx: the sampling step (``model.onnx``) and the whole sampling loop (``loop.onnx``).

Both graphs take their noise as an input (tf2onnx converts neither TFP's
sampling ops nor TF's stateless random ops), and their output names differ
from their input names (``h`` -> ``h_next``, ...). The loop is a TF while
loop, which tf2onnx turns into one ONNX ``Loop``; tf2onnx passes the loop's
invariants (weights, noise, text) through the loop as carried values, so
after conversion `hoist_loop_invariants` moves the constant ones into the
loop body as its own initializers (onnxruntime then pre-packs them for its
matmuls) and lets the body read the others from the outer scope. That
halves the time per step at batch 32.
"""

from __future__ import annotations

import logging
import os

import onnx

from zoo import atomic

STEP_FILE, LOOP_FILE = "model.onnx", "loop.onnx"
INT8_FILES = {"step": "model.int8.onnx", "loop": "loop.int8.onnx"}
OPSET = 17


def _rename_input(graph, old: str, new: str) -> None:
    """Point every use of ``old`` in ``graph`` (and its subgraphs) at ``new``."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                _rename_input(attr.g, old, new)
    for out in graph.output:
        if out.name == old:
            out.name = new


def _replace(repeated, items) -> None:
    copies = []
    for item in items:
        copy = type(item)()
        copy.CopyFrom(item)
        copies.append(copy)
    del repeated[:]
    repeated.extend(copies)


def hoist_loop_invariants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Stop carrying loop-invariant values through every top-level ``Loop``.

    A carried value is invariant when the body returns its input unchanged
    and nothing reads the Loop's final value of it. Constants become
    initializers of the body; other values are read from the outer scope.
    """
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for node in graph.node:
        if node.op_type != "Loop":
            continue
        body = next(a.g for a in node.attribute if a.name == "body")
        carried = len(node.input) - 2
        keep = []
        for i in range(carried):
            outer, inner, returned, final = node.input[2 + i], body.input[2 + i].name, body.output[1 + i].name, node.output[i]
            if returned != inner or final in used or not outer:
                keep.append(i)
            elif outer in initializers:
                tensor = onnx.TensorProto()
                tensor.CopyFrom(initializers[outer])
                tensor.name = inner
                body.initializer.append(tensor)
            else:
                _rename_input(body, inner, outer)
        node_inputs = list(node.input[:2]) + [node.input[2 + i] for i in keep]
        node_outputs = [node.output[i] for i in keep] + list(node.output[carried:])
        body_inputs = list(body.input[:2]) + [body.input[2 + i] for i in keep]
        body_outputs = [body.output[0]] + [body.output[1 + i] for i in keep] + list(body.output[1 + carried :])
        del node.input[:]
        node.input.extend(node_inputs)
        del node.output[:]
        node.output.extend(node_outputs)
        _replace(body.input, body_inputs)
        _replace(body.output, body_outputs)
    # Initializers now living only inside the loop body.
    used = {name for node in graph.node for name in node.input}
    _replace(graph.initializer, [t for t in graph.initializer if t.name in used])
    return model


def _convert(fn, opset: int) -> onnx.ModelProto:
    import tf2onnx

    proto, _ = tf2onnx.convert.from_function(fn, input_signature=fn.input_signature, opset=opset)
    return proto


def export_onnx(graphs, folder: str, opset: int = OPSET) -> dict:
    """Write ``model.onnx`` (one step) and ``loop.onnx`` (the whole loop) of ``graphs`` to ``folder``.

    Returns the facts recorded in metadata.json.
    """
    import tf2onnx

    os.makedirs(folder, exist_ok=True)
    files = {}
    for role, fn, name in (("step", graphs.step, STEP_FILE), ("loop", graphs.loop, LOOP_FILE)):
        if fn is None:  # a recognizer has one graph, no sampling loop
            continue
        proto = _convert(fn, opset)
        if role == "loop":
            proto = hoist_loop_invariants(proto)
        onnx.checker.check_model(proto)
        inputs = [i.name for i in proto.graph.input]
        outputs = [o.name for o in proto.graph.output]
        clash = set(inputs) & set(outputs)
        if clash:  # onnxruntime cannot feed and fetch one name
            raise RuntimeError(f"{name}: outputs named like inputs: {sorted(clash)}")
        with atomic.replacing(os.path.join(folder, name)) as tmp:
            onnx.save(proto, tmp)
        files[role] = {"file": name, "inputs": inputs, "outputs": outputs}
    return {"graphs": files, "opset": opset, "tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__}


def quantize_int8(folder: str, graphs: dict) -> dict:
    """Write int8 copies of the exported graphs (``model.int8.onnx``, ``loop.int8.onnx``) next to them.

    onnxruntime's dynamic quantization: weights of MatMul / Gather stored as
    int8 (symmetric, one scale per output column), activations quantized to uint8 on the fly per
    call (``EnableSubgraph`` reaches the weights inside the Loop body, which
    `hoist_loop_invariants` made its initializers). ``reduce_range`` keeps the
    weights to 7 bits: on CPUs without VNNI (AVX2) the u8 x s8 kernels add
    pairs of products in saturating 16-bit lanes, and full-range weights
    overflow them: measured on the tiny test models, 8-bit weights put the
    mixture parameters 0.14 and text logits 0.8 off float, 7-bit ones 0.013
    and 0.04, at the same speed. ``per_channel`` (a scale per column rather
    than per matrix) cut the loss of log-likelihood of 64 IAM-OnDB testset_v
    lines under the 3x128 synthesis preset (now iam-synthesis-small) from 79 to 22 nats per line (of 547; step graph,
    bench/int8_quality.py) for ~0.04 ms per step at batch 1 (3x400). Inputs
    and outputs keep their names, dtypes and shapes. Returns the facts recorded in metadata.json (``export.onnx.int8``).
    """
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    files = {}
    for role, info in graphs.items():
        src, name = os.path.join(folder, info["file"]), INT8_FILES[role]
        with atomic.replacing(os.path.join(folder, name)) as tmp:
            logging.disable(logging.WARNING)  # its advice to pre-process (shape inference) does not apply to these graphs
            try:
                quantize_dynamic(src, tmp, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True, extra_options={"EnableSubgraph": True})
            finally:
                logging.disable(logging.NOTSET)
            proto = onnx.load(tmp)
            inputs = [i.name for i in proto.graph.input]
            outputs = [o.name for o in proto.graph.output]
            if inputs != info["inputs"] or outputs != info["outputs"]:
                raise RuntimeError(f"{name}: quantization changed the graph's inputs or outputs")
        files[role] = {"file": name, "inputs": inputs, "outputs": outputs}
    return {
        "graphs": files,
        "method": "onnxruntime.quantization.quantize_dynamic",
        "weight_type": "QInt8",
        "per_channel": True,
        "reduce_range": True,
        "onnxruntime": onnxruntime.__version__,
    }


def remove_int8(folder: str) -> None:
    """Delete int8 graphs left by an earlier export (they would not match the new float graphs)."""
    for name in INT8_FILES.values():
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            os.remove(path)
