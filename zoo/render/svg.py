"""Pen offsets -> SVG polylines, one row per line of handwriting.

The SVG also carries the pen offsets themselves (``<metadata id="zoo-offsets">``,
JSON, 0.01 tablet units), so that ``zoo read`` reads a written page back as
the recognizer reads any line: from the offsets, not from pixels.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np

OFFSETS_ID, OFFSETS_FORMAT = "zoo-offsets", "zoo-offsets/1"


def offsets_to_strokes(offsets: np.ndarray) -> list[np.ndarray]:
    """(N, 3) offsets (dx, dy, eos) -> list of (n, 2) absolute polylines, one per pen-down stroke."""
    offsets = np.asarray(offsets, dtype=np.float64)
    points = np.cumsum(offsets[:, :2], axis=0)
    ends = np.flatnonzero(offsets[:, 2] > 0.5)
    strokes, start = [], 0
    for e in list(ends) + [len(points) - 1]:
        if e >= start:
            strokes.append(points[start : e + 1])
        start = e + 1
    return [s for s in strokes if len(s)]


def _as_list(offsets) -> list[np.ndarray]:
    if isinstance(offsets, np.ndarray) and offsets.ndim == 2:
        return [offsets]
    return [np.asarray(o) for o in offsets]


def layout(offsets, line_gap: float = 0.25) -> tuple[list[list[np.ndarray]], float, float]:
    """Place each sequence on its own row; returns strokes per row and the canvas size.

    IAM-OnDB's y axis points down, like SVG's, so no flip is needed.
    """
    rows, y0, width = [], 0.0, 1.0
    for off in _as_list(offsets):
        strokes = offsets_to_strokes(off)
        if not strokes:
            rows.append([])
            continue
        allp = np.concatenate(strokes)
        lo, hi = allp.min(axis=0), allp.max(axis=0)
        height = max(hi[1] - lo[1], 1.0)
        shift = np.array([-lo[0], y0 - lo[1]])
        rows.append([s + shift for s in strokes])
        width = max(width, hi[0] - lo[0])
        y0 += height * (1.0 + line_gap)
    return rows, width, max(y0, 1.0)


def save_svg(offsets, path: str, stroke_width: float = 1.5, pixels_per_unit: float | None = None, margin: float = 10.0) -> None:
    rows, width, height = layout(offsets)
    scale = pixels_per_unit or min(1.0, 1000.0 / width)
    w, h = width * scale + 2 * margin, height * scale + 2 * margin
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" viewBox="0 0 {w:.1f} {h:.1f}">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<g fill="none" stroke="black" stroke-width="{stroke_width}" stroke-linecap="round" stroke-linejoin="round">',
    ]
    lines = [np.round(np.asarray(o, np.float64), 2).tolist() for o in _as_list(offsets)]
    parts.insert(2, f'<metadata id="{OFFSETS_ID}">{json.dumps({"format": OFFSETS_FORMAT, "lines": lines}, separators=(",", ":"))}</metadata>')
    for strokes in rows:
        for s in strokes:
            pts = " ".join(f"{x * scale + margin:.1f},{y * scale + margin:.1f}" for x, y in s)
            if len(s) == 1:
                x, y = s[0] * scale + margin
                pts = f"{x:.1f},{y:.1f} {x + 0.1:.1f},{y:.1f}"
            parts.append(f'<polyline points="{pts}"/>')
    parts.append("</g></svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def read_svg_offsets(path: str) -> list[np.ndarray]:
    """The pen offsets per line that `save_svg` stored in an SVG (ValueError if it holds none)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{path} is not a readable SVG file ({exc})") from None
    for node in root.iter():
        if node.tag.rsplit("}", 1)[-1] == "metadata" and node.get("id") == OFFSETS_ID:
            try:
                data = json.loads(node.text or "")
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: its pen offsets are damaged ({exc}); write the file again") from None
            if data.get("format") != OFFSETS_FORMAT:
                raise ValueError(f"{path}: pen offsets in an unknown format {data.get('format')!r}")
            return [np.asarray(line, np.float32).reshape(-1, 3) for line in data["lines"]]
    raise ValueError(f"{path} carries no pen offsets: only SVGs written by `zoo write` or `zoo sample` (this version) can be read back; write it again")
