"""Pen offsets -> PNG through matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from zoo.render.svg import layout  # noqa: E402


def save_png(offsets, path: str, stroke_width: float = 1.5, dpi: int = 120) -> None:
    rows, width, height = layout(offsets)
    fig_w = 10.0
    fig_h = max(1.0, fig_w * height / width)
    fig, ax = plt.subplots(figsize=(fig_w, min(fig_h, 40.0)))
    for strokes in rows:
        for s in strokes:
            ax.plot(s[:, 0], s[:, 1], color="black", linewidth=stroke_width, solid_capstyle="round")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)  # IAM-OnDB y points down
    ax.set_aspect("equal")
    ax.axis("off")
    fig.savefig(path, dpi=dpi, bbox_inches="tight", facecolor="white")
    plt.close(fig)
