"""Strokes -> pictures. Knows nothing of Keras: input is numpy pen offsets."""

from zoo.render.svg import offsets_to_strokes, save_svg


def save_drawing(offsets, path: str, **kwargs) -> None:
    """Save one or more offset sequences (N, 3) / (K, N, 3) as .svg or .png."""
    if path.lower().endswith(".svg"):
        save_svg(offsets, path, **kwargs)
    elif path.lower().endswith(".png"):
        from zoo.render.png import save_png

        save_png(offsets, path, **kwargs)
    else:
        raise ValueError(f"cannot tell the picture format of {path!r}: name it FILE.svg or FILE.png")


__all__ = ["offsets_to_strokes", "save_svg", "save_drawing"]
