"""Pictures of search results: the query and its hits as one captioned grid (the paper's Fig. 8 layout).

Each cell is a face scaled to one side length with up to three caption lines under it; the query comes first,
framed, so a person sees at a glance whether the hits hold its pose.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from model.image_grid import image_grid

GUTTER = 6
LINE_HEIGHT = 12  # between caption lines
QUERY_FRAME = (200, 40, 40)  # the query's outline colour


def captioned_grid(
    images: Sequence[np.ndarray],
    captions: Sequence[Sequence[str]],
    *,
    cell: int = 128,
    columns: int = 6,
    highlight_first: bool = False,
) -> Image.Image:
    """RGB uint8 images (any sizes; each scaled to `cell` x `cell`) in rows of `columns`, with caption lines below.

    `highlight_first` outlines the first cell (the query).
    """
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    if not images:
        raise ValueError("nothing to draw")
    starts = range(0, len(images), columns)
    grid = image_grid(
        [images[i : i + columns] for i in starts],
        tile_size=cell,
        gutter=GUTTER,
        captions=[captions[i : i + columns] for i in starts],
        line_height=LINE_HEIGHT,
        resample=Image.Resampling.BILINEAR,
    )
    if highlight_first:
        x = y = GUTTER  # the first cell's corner: this grid has no label bands
        ImageDraw.Draw(grid).rectangle((x - 3, y - 3, x + cell + 2, y + cell + 2), outline=QUERY_FRAME, width=3)
    return grid


def hits_grid(
    query: np.ndarray, hits, frames: Sequence[np.ndarray], *, cell: int = 128, columns: int = 6
) -> Image.Image:
    """The query crop, then each hit's frame captioned "#rank score", its identity, and "video/frame".

    `hits` is a `Retriever.search` table; `frames[i]` is the image of its row i (`Retriever.hit_images`).
    """
    captions = [["query", "", ""]] + [
        [f"#{row.rank}  {row.score:.3f}", str(row.identity), f"{row.video}/{row.frame}"] for row in hits.itertuples()
    ]
    return captioned_grid([query, *frames], captions, cell=cell, columns=columns, highlight_first=True)


def segments_grid(
    query: Sequence[np.ndarray], segments, frames: Sequence[Sequence[np.ndarray]], *, cell: int = 96, columns: int = 8
) -> Image.Image:
    """A motion query's strip over each found segment's strip (`motion_query`): row 0 the clip's samples, row i
    segment i's frames, each row thinned evenly to at most `columns` pictures; rows labelled with rank, score and
    identity/video/frames."""

    def thin(strip: Sequence[np.ndarray]) -> list[np.ndarray]:
        picks = np.unique(np.linspace(0, len(strip) - 1, min(columns, len(strip))).round().astype(int))
        return [strip[i] for i in picks]

    rows = [thin(query)] + [thin(strip) for strip in frames]
    labels = ["query"] + [
        f"#{row.rank} {row.score:.3f}\n{row.identity}\n{row.video}\n{row.start_frame}-{row.end_frame}"
        for row in segments.itertuples()
    ]
    return image_grid(rows, tile_size=cell, gutter=GUTTER, row_labels=labels, resample=Image.Resampling.BILINEAR)
