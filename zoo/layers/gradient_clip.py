"""Clip derivatives, not values: the identity forwards, a clipped gradient backwards.

Graves (2013, sec. 4.2) clips "the derivatives with respect to the network
inputs to the LSTM layers ... to lie within [-10, 10]" and the output
derivatives to [-100, 100]; the text networks (sec. 3) clip the LSTM
derivatives to [-1, 1]. Those are derivatives of one sequence's log-loss, the
sum over its steps (eq. 13, eq. 26). The handwriting loss is the mean over
the lines of a batch, so the incoming gradient is scaled back by the number
of lines B before clipping. The text models' loss is the mean over the
symbols as well (nats per symbol, B x T terms): inside
``loss_averaged_over_steps(T)`` the gradient is scaled by B x T instead, so
the clip acts on the derivatives of each sequence's summed loss while the
reported loss stays per symbol.
"""

import contextlib
import contextvars

from keras import ops

_STEPS = contextvars.ContextVar("zoo_loss_steps", default=1)


@contextlib.contextmanager
def loss_averaged_over_steps(steps):
    """Within this block, `clip_gradient` takes the loss to be a mean over
    ``steps`` time steps of every line as well as over the lines.

    ``steps`` (a number or a scalar tensor) is read when the clipped ops are
    built, so the gradient, computed later, keeps it."""
    token = _STEPS.set(steps)
    try:
        yield
    finally:
        _STEPS.reset(token)


def clip_gradient(x, limit: float):
    """Return ``x``; in backprop clip each sequence's derivative to [-limit, limit]."""
    steps = _STEPS.get()
    if not isinstance(steps, (int, float)):
        steps = ops.cast(steps, x.dtype)  # built here, in the forward graph, for the gradient to use

    @ops.custom_gradient
    def identity(x):
        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            terms = ops.cast(ops.shape(upstream)[0], upstream.dtype) * steps
            return ops.clip(upstream * terms, -limit, limit) / terms

        return x, grad

    return identity(x)
