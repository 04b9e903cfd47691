"""Start a wider handwriting network from a narrower one's weights, computing the same function.

Why: a 3x400 network trained from scratch on a CPU spends its first hours relearning
what the shipped 3x128 already knows. Widened, it starts at the 3x128's loss and
trains on from there (`zoo train synthesis --init-from iam-synthesis-small --units 400`: how the 3x400
iam-synthesis began).

How (the "new units start silent" variant of Net2Net widening, Chen et al. 2016):
every layer keeps its old units in its first positions with their weights unchanged;
the new units get the fresh network's random incoming weights (kernel and recurrent
columns, bias with forget bias 1, zero peepholes) and **zero outgoing weights**:
the rows that read them in their own recurrent kernel, in the next layer's kernel
(eq. 2, 53), in the window (eq. 48) and in the output layer (eq. 3). Whatever the
new units compute, nothing reads it yet, so every old unit's activation, the window
and y_hat are exactly those of the narrow network (checked to 1e-5 in the tests).
Their outgoing weights have non-zero gradients (the new units are active), so the
first update starts using them; random incoming weights keep them from being copies
of each other.
"""

import numpy as np


def _cells(model):
    return model.cells if hasattr(model, "cells") else model.lstm.cells


def _axis(old_units: int, new_units: int, layout) -> tuple[np.ndarray, np.ndarray]:
    """One axis of a weight matrix, before and after widening: (where each old row or column goes,
    the rows that read a new unit, whose weights start at zero).

    ``layout``: the axis as segments, ("fixed", size) for inputs that do not change
    (pen offsets, the window's characters, the mixture parameters) and "hidden" for
    one layer's units (old_units wide before, new_units after)."""
    kept, silent, start = [], [], 0
    for seg in layout:
        size = new_units if seg == "hidden" else seg[1]
        kept.append(start + np.arange(old_units if seg == "hidden" else size))
        if seg == "hidden":
            silent.append(start + np.arange(old_units, new_units))
        start += size
    return np.concatenate(kept), (np.concatenate(silent) if silent else np.zeros(0, int))


def widen(model, units: int):
    """A copy of the prediction or synthesis network ``model`` with ``units`` per layer, computing the
    same function (see the module's docstring). Optimiser state is not carried: compile it afresh."""
    old = model.units
    if units < old:
        raise ValueError(f"--units {units} is narrower than the preset's {old} units per layer: a network can be widened, not narrowed")
    wide = type(model).from_config({**model.get_config(), "units": units})
    wide.build()
    synthesis = hasattr(model, "window")
    chars = model.num_chars if synthesis else 0
    gates = ["hidden"] * 4  # i, f, c, o blocks of the fused kernels' columns
    plans = []  # (old variable, new variable, row layout (None for a bias), column layout)
    for n, (a, b) in enumerate(zip(_cells(model), _cells(wide))):
        # Kernel rows in the order the step concatenates its inputs: x_t, h^(n-1)_t (eq. 2, 53), w (eq. 52-53).
        rows = [("fixed", 3)] + (["hidden"] if n else []) + ([("fixed", chars)] if synthesis else [])
        plans += [
            (a.kernel, b.kernel, rows, gates),
            (a.recurrent_kernel, b.recurrent_kernel, ["hidden"], gates),
            (a.bias, b.bias, None, gates),
            (a.peephole, b.peephole, [("fixed", 3)], ["hidden"]),
        ]
    if synthesis:  # eq. 48: the window reads h^1
        params = [("fixed", 3 * model.window_components)]
        plans += [(model.window.dense.kernel, wide.window.dense.kernel, ["hidden"], params), (model.window.dense.bias, wide.window.dense.bias, None, params)]
    outputs = [("fixed", model.head.dense.kernel.shape[-1])]
    plans += [(model.head.dense.kernel, wide.head.dense.kernel, ["hidden"] * model.num_layers, outputs),  # eq. 3
              (model.head.dense.bias, wide.head.dense.bias, None, outputs)]
    for src, dst, rows, cols in plans:
        value = np.array(dst.numpy())
        old_value = np.asarray(src.numpy())
        c, _ = _axis(old, units, cols)
        if rows is None:  # a bias: old units keep theirs, new units the fresh init
            value[c] = old_value
        else:
            r, silent = _axis(old, units, rows)
            value[silent, :] = 0.0
            value[np.ix_(r, c)] = old_value
        dst.assign(value)
    # Anything else (adaptive weight noise's log-sigmas) keeps the fresh network's initial values.
    return wide
