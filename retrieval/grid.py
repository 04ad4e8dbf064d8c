"""Pictures of search results: the query and its hits as one captioned grid (the paper's Fig. 8 layout).

Each cell is a face scaled to one side length with up to three caption lines under it; the query comes first,
framed, so a person sees at a glance whether the hits hold its pose.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

GUTTER = 6
LINE_HEIGHT = 12
QUERY_FRAME = (200, 40, 40)  # the query's outline colour


def captioned_grid(images: Sequence[np.ndarray], captions: Sequence[Sequence[str]], *, cell: int = 128,
                   columns: int = 6, highlight_first: bool = False) -> Image.Image:
    """RGB uint8 images (any sizes; each scaled to `cell` x `cell`) in rows of `columns`, with caption lines below.

    `highlight_first` outlines the first cell (the query).
    """
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    if not images:
        raise ValueError("nothing to draw")
    lines = max(len(c) for c in captions)
    columns = min(columns, len(images))
    rows = math.ceil(len(images) / columns)
    cell_h = cell + lines * LINE_HEIGHT + 4
    grid = Image.new("RGB", (columns * (cell + GUTTER) + GUTTER, rows * (cell_h + GUTTER) + GUTTER), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    chars = max(4, cell // 6)  # the default bitmap font is 6 px wide
    for i, (image, caption) in enumerate(zip(images, captions)):
        x = GUTTER + (i % columns) * (cell + GUTTER)
        y = GUTTER + (i // columns) * (cell_h + GUTTER)
        grid.paste(Image.fromarray(image).convert("RGB").resize((cell, cell), Image.Resampling.BILINEAR), (x, y))
        if highlight_first and i == 0:
            draw.rectangle((x - 3, y - 3, x + cell + 2, y + cell + 2), outline=QUERY_FRAME, width=3)
        for j, line in enumerate(caption):
            draw.text((x, y + cell + 2 + j * LINE_HEIGHT), line[:chars], fill="black", font=font)
    return grid


def hits_grid(query: np.ndarray, hits, frames: Sequence[np.ndarray], *, cell: int = 128,
              columns: int = 6) -> Image.Image:
    """The query crop, then each hit's frame captioned "#rank score", its identity, and "video/frame".

    `hits` is a `Retriever.search` table; `frames[i]` is the image of its row i (`Retriever.hit_images`).
    """
    captions = [["query", "", ""]] + [
        [f"#{row.rank}  {row.score:.3f}", str(row.identity), f"{row.video}/{row.frame}"]
        for row in hits.itertuples()]
    return captioned_grid([query, *frames], captions, cell=cell, columns=columns, highlight_first=True)
