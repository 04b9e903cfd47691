"""Figures: loss curves and the predictive density along a line (Graves Fig. 10).

Inputs are numpy arrays and plain dicts; the model side (zoo.sampling) turns a
network's outputs into the mixture parameters drawn here.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from zoo.render.svg import offsets_to_strokes  # noqa: E402


def plot_loss_curve(
    history: list[dict], path: str, reference: float | None = None, reference_label: str = "Graves 2013", unit: str = "nats per line"
) -> None:
    """Training and validation loss per epoch."""
    if not history:
        return
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        vals = [h.get(key) for h in history]
        if any(v is not None for v in vals):
            ax.plot(epochs, vals, marker=".", label=label)
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", label=reference_label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"negative log-likelihood ({unit})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_training_ledger(legs: list[dict], path: str, unit: str = "nats per line") -> None:
    """Validation loss against cumulative training hours over a preset's legs (`zoo.model_card.ledger`):
    one series per leg, named by its machine and batch, so a curve that spans sessions and machines
    reads as one run."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for n, leg in enumerate(legs, 1):
        if leg["hours"]:
            ax.plot(leg["hours"], leg["val_loss"], marker=".", label=f"leg {n}: {leg['label']}")
    ax.set_xlabel("training hours, all legs")
    ax.set_ylabel(f"validation NLL ({unit})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def density_image(points: np.ndarray, params: dict, units_per_pixel: float = 4.0, margin: float = 60.0):
    """Sum over steps of the predicted density of the next pen position.

    points (T, 2): absolute pen positions x_t; params: arrays (T, M) pi, mu1,
    mu2, sigma1, sigma2, rho in tablet units, predicting x_{t+1} - x_t.
    """
    lo = points.min(axis=0) - margin
    hi = points.max(axis=0) + margin
    w, h = (np.ceil((hi - lo) / units_per_pixel)).astype(int) + 1
    image = np.zeros((h, w))
    for t in range(len(points)):
        pi, s1, s2, rho = params["pi"][t], params["sigma1"][t], params["sigma2"][t], params["rho"][t]
        cx = points[t, 0] + params["mu1"][t]
        cy = points[t, 1] + params["mu2"][t]
        keep = pi > 1e-3
        if not keep.any():
            continue
        # A patch that covers every kept component to three standard deviations.
        x0 = np.min(cx[keep] - 3 * s1[keep]); x1 = np.max(cx[keep] + 3 * s1[keep])
        y0 = np.min(cy[keep] - 3 * s2[keep]); y1 = np.max(cy[keep] + 3 * s2[keep])
        i0, i1 = np.clip([int((x0 - lo[0]) / units_per_pixel), int((x1 - lo[0]) / units_per_pixel) + 1], 0, w)
        j0, j1 = np.clip([int((y0 - lo[1]) / units_per_pixel), int((y1 - lo[1]) / units_per_pixel) + 1], 0, h)
        if i1 <= i0 or j1 <= j0 or (i1 - i0) * (j1 - j0) > 250_000:
            continue  # a pen-up jump's diffuse density adds nothing visible
        gx = lo[0] + units_per_pixel * np.arange(i0, i1)
        gy = lo[1] + units_per_pixel * np.arange(j0, j1)
        dx = (gx[None, None, :] - cx[keep, None, None]) / s1[keep, None, None]
        dy = (gy[None, :, None] - cy[keep, None, None]) / s2[keep, None, None]
        r = rho[keep, None, None]
        z = dx**2 + dy**2 - 2 * r * dx * dy  # eq. 25
        dens = np.exp(-z / (2 * (1 - r**2))) / (2 * np.pi * s1[keep, None, None] * s2[keep, None, None] * np.sqrt(1 - r**2))  # eq. 24
        image[j0:j1, i0:i1] += np.tensordot(pi[keep], dens, axes=1) * units_per_pixel**2
    return image, lo, units_per_pixel


def plot_predictive_density(offsets: np.ndarray, params: dict, path: str, title: str | None = None) -> None:
    """Heatmap of the network's predictions along a real line, the line drawn over it."""
    points = np.cumsum(np.asarray(offsets, np.float64)[:, :2], axis=0)
    image, lo, upp = density_image(points[:-1], params)
    fig_w = 12.0
    fig, axes = plt.subplots(2, 1, figsize=(fig_w, 2 * fig_w * image.shape[0] / image.shape[1] + 1.0))
    extent = (lo[0], lo[0] + image.shape[1] * upp, lo[1] + image.shape[0] * upp, lo[1])
    axes[0].imshow(np.sqrt(image), cmap="hot_r", extent=extent, interpolation="bilinear")
    axes[0].set_title("predictive density of the next pen position (summed over steps)" if title is None else title, fontsize=9)
    for s in offsets_to_strokes(offsets):
        axes[1].plot(s[:, 0], s[:, 1], color="black", linewidth=1)
    axes[1].set_xlim(extent[0], extent[1])
    axes[1].set_ylim(extent[2], extent[3])
    for ax in axes:
        ax.set_aspect("equal")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110, facecolor="white")
    plt.close(fig)


def plot_alignment(phi: np.ndarray, text: str, path: str, offsets: np.ndarray | None = None) -> None:
    """The window weights phi(t, u) over the text against time (Graves Fig. 13), the line drawn above."""
    rows = 2 if offsets is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(10, 3 + 2 * rows), squeeze=False)
    if offsets is not None:
        for s in offsets_to_strokes(offsets):
            axes[0, 0].plot(s[:, 0], s[:, 1], color="black", linewidth=1)
        axes[0, 0].invert_yaxis()
        axes[0, 0].set_aspect("equal")
        axes[0, 0].axis("off")
    ax = axes[-1, 0]
    ax.imshow(phi.T, aspect="auto", origin="lower", cmap="Greys", interpolation="nearest")
    ax.set_yticks(range(len(text)))
    ax.set_yticklabels(list(text.replace(" ", "␣")), fontsize=7, family="monospace")
    ax.set_xlabel("pen point t")
    ax.set_ylabel("character u")
    ax.set_title("soft window weights phi(t, u)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, facecolor="white")
    plt.close(fig)
