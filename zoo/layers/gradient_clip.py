"""Clip derivatives, not values: the identity forwards, a clipped gradient backwards.

Graves (2013, sec. 4.2) clips "the derivatives with respect to the network
inputs to the LSTM layers ... to lie within [-10, 10]" and the output
derivatives to [-100, 100]. The loss is the mean over the lines of a batch, so
the incoming gradient is scaled back to one line's derivative before clipping.
"""

from keras import ops


def clip_gradient(x, limit: float):
    """Return ``x``; in backprop clip each line's derivative to [-limit, limit]."""

    @ops.custom_gradient
    def identity(x):
        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            lines = ops.cast(ops.shape(upstream)[0], upstream.dtype)
            return ops.clip(upstream * lines, -limit, limit) / lines

        return x, grad

    return identity(x)
