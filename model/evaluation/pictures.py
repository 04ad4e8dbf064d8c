"""The evaluation's pictures: retrieval grids (paper Fig. 8), the disentangling of one video (Fig. 7), a reenactment
grid with sources down the side and drivers across the top (Figs. 1 and 5), and bar charts of the metrics.

Drawn with Pillow (no plotting library in the project). Images are `(N, 3, S, S)` in [-1, 1]; cells are enlarged
with nearest-neighbour sampling to `cell` pixels (small frames stay sharp), with a white gutter and text labels,
laid out by `model.image_grid`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from model.daegan import to_images
from model.image_grid import image_grid

GUTTER = 3  # pixels of white between cells
LABEL_HEIGHT = 14  # a line of Pillow's default font
BAR_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (148, 103, 189), (140, 86, 75))  # model first
BAR_PANEL = (300, 150)  # width, height of one bar-chart panel's plotting area


def tensor_grid(
    rows: Sequence[Sequence[torch.Tensor | None]],
    *,
    row_labels: Sequence[str] = (),
    column_labels: Sequence[str] = (),
    cell: int = 96,
) -> Image.Image:
    """A grid of single images `(3, S, S)` in [-1, 1] (None leaves a cell blank), labelled along the top and left."""
    tiles = [[None if img is None else to_images(img) for img in row] for row in rows]
    return image_grid(tiles, tile_size=cell, gutter=GUTTER, column_labels=column_labels, row_labels=row_labels)


def retrieval_grid(
    queries: torch.Tensor, hits: torch.Tensor, *, row_labels: Sequence[str] = (), cell: int = 96
) -> Image.Image:
    """Fig. 8: each row a query `(Q, 3, S, S)` then its top-k hits `(Q, k, 3, S, S)`, best first."""
    rows = [[queries[q], None, *hits[q]] for q in range(len(queries))]
    labels = ["query", "", *(f"hit {i + 1}" for i in range(hits.shape[1]))]
    return tensor_grid(rows, row_labels=row_labels, column_labels=labels, cell=cell)


def disentangling_picture(
    frames: torch.Tensor,
    face_flow: torch.Tensor,
    faces: torch.Tensor,
    pose_flow: torch.Tensor,
    reconstruction: torch.Tensor,
    *,
    cell: int = 96,
) -> Image.Image:
    """Fig. 7 for N frames of one video, one column each: the frame, F's displacement field, the embedded face from
    that frame alone, P's warp T^-1, and the frame rebuilt from the video's embedded face (eq. 2)."""
    rows = [list(frames), list(face_flow), list(faces), list(pose_flow), list(reconstruction)]
    labels = ["input x", "F's warp T", "embedded face", "P's warp T^-1", "reconstruction"]
    return tensor_grid(rows, row_labels=labels, cell=cell)


def reenactment_grid(
    sources: torch.Tensor, drivers: torch.Tensor, reenacted: torch.Tensor, *, cell: int = 96
) -> Image.Image:
    """Figs. 1 and 5: drivers `(D, 3, S, S)` across the top, sources `(R, 3, S, S)` down the side, and in each cell
    the source's face in the driver's pose `(R, D, 3, S, S)`."""
    rows = [[None, None, *drivers]]
    rows += [[sources[r], None, *reenacted[r]] for r in range(len(sources))]
    labels = ["source", "", *(f"driver {i + 1}" for i in range(len(drivers)))]
    return tensor_grid(rows, column_labels=labels, cell=cell)


def bar_chart(panels: Sequence[tuple[str, Sequence[tuple[str, float]]]], *, columns: int = 3) -> Image.Image:
    """Panels of horizontal bars: (title, [(label, value), ...]); the first bar of a panel is the model's. Values
    may be negative (R^2); NaN bars are labelled "n/a"."""
    width, height = BAR_PANEL
    font = ImageFont.load_default()
    rows = (len(panels) + columns - 1) // columns
    panel_w, panel_h = width + 130, height + 2 * LABEL_HEIGHT + 10
    chart = Image.new("RGB", (columns * panel_w + 10, rows * panel_h + 10), "white")
    draw = ImageDraw.Draw(chart)
    for p, (title, bars) in enumerate(panels):
        x0, y0 = 10 + (p % columns) * panel_w, 10 + (p // columns) * panel_h
        draw.text((x0, y0), title[: panel_w // 6], fill="black", font=font)
        values = [v for _, v in bars if np.isfinite(v)]
        low, high = min(0.0, *values) if values else 0.0, max(0.0, *values) if values else 1.0
        span = (high - low) or 1.0
        bar_h = max(4, (height - 4) // max(len(bars), 1) - 4)
        left = x0 + 100
        zero = left + (0.0 - low) / span * (width - 60)
        for i, (label, value) in enumerate(bars):
            y = y0 + LABEL_HEIGHT + 4 + i * (bar_h + 4)
            draw.text((x0, y + bar_h / 2 - 6), label[:16], fill="black", font=font)
            if not np.isfinite(value):
                draw.text((left, y + bar_h / 2 - 6), "n/a", fill="gray", font=font)
                continue
            end = left + (value - low) / span * (width - 60)
            draw.rectangle((min(zero, end), y, max(zero, end), y + bar_h), fill=BAR_COLOURS[i % len(BAR_COLOURS)])
            draw.text((max(zero, end) + 4, y + bar_h / 2 - 6), f"{value:.3g}", fill="black", font=font)
        draw.line((zero, y0 + LABEL_HEIGHT + 2, zero, y0 + LABEL_HEIGHT + height), fill="black")
    return chart
