"""Pictures made of equally sized images in rows and columns: the one layout under the training samples, the
evaluation's figures (paper Figs. 1, 5, 7, 8), the search-result grid and the SynthVox contact sheet.

Layout, in pixels: a white canvas; an optional band of column labels along the top (one text line high) and of
row labels down the left (`ROW_LABEL_WIDTH` wide); then the tiles, a white gutter around each, and under each
tile an optional band of caption lines. Tile (r, c) has its top-left corner at
``(left + gutter + c * (tile_w + gutter), top + gutter + r * (tile_h + caption + gutter))``.

Choices made:
- Drawn with Pillow (no plotting library in the project). Tiles are resized to the tile size with the caller's
  resampling: nearest keeps small generated frames sharp, bilinear suits photos of any size.
- Text is Pillow's default font, cut to the width it has (measured, so it never runs into the next tile).
- A missing tile (None) leaves its place white, so figures can keep a column or a corner empty.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LINE_HEIGHT = 14  # one line of the default font, with room between lines
ROW_LABEL_WIDTH = 96  # the left band holding row labels
TEXT_INSET = 2  # pixels between a tile or a band's edge and its text
CAPTION_PADDING = 2 * TEXT_INSET  # added to a caption band's lines: space above and below the text


def image_grid(
    tiles: Sequence[Sequence[np.ndarray | None]],
    *,
    tile_size: int | tuple[int, int],
    gutter: int,
    column_labels: Sequence[str] = (),
    row_labels: Sequence[str] = (),
    captions: Sequence[Sequence[Sequence[str]]] | None = None,
    line_height: int = LINE_HEIGHT,
    resample: Image.Resampling = Image.Resampling.NEAREST,
) -> Image.Image:
    """Tiles in rows (`tiles[r][c]`, uint8 ``(H, W, 3)`` or ``(H, W)``, any size; rows may be short) as one RGB
    picture, each tile resized to `tile_size` (side, or (width, height)) with `resample`.

    `column_labels` head the columns; `row_labels` (lines split at "\\n") sit left of their rows; `captions[r][c]`
    are the lines under tile (r, c), `line_height` apart. Where each lands: the module docstring.
    """
    assert tiles and all(len(row) for row in tiles), "need at least one tile in every row"
    tile_w, tile_h = (tile_size, tile_size) if isinstance(tile_size, int) else tile_size
    num_cols = max(len(row) for row in tiles)
    top = line_height if column_labels else 0
    left = ROW_LABEL_WIDTH if row_labels else 0
    caption = 0  # height of the band under each tile
    if captions is not None:
        caption = max((len(c) for row in captions for c in row), default=0) * line_height + CAPTION_PADDING
    pitch_x, pitch_y = tile_w + gutter, tile_h + caption + gutter
    grid = Image.new("RGB", (left + num_cols * pitch_x + gutter, top + len(tiles) * pitch_y + gutter), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()

    def text(xy: tuple[int, int], line: str, width: int) -> None:
        draw.text(xy, _fit(draw, line, width, font), fill="black", font=font)

    for c, label in enumerate(column_labels):
        text((left + gutter + c * pitch_x, 1), label, tile_w)
    for r, row in enumerate(tiles):
        y = top + gutter + r * pitch_y
        if r < len(row_labels):
            for i, line in enumerate(row_labels[r].split("\n")):
                text((TEXT_INSET, y + TEXT_INSET + i * line_height), line, ROW_LABEL_WIDTH - 2 * TEXT_INSET)
        for c, tile in enumerate(row):
            x = left + gutter + c * pitch_x
            if tile is not None:
                grid.paste(Image.fromarray(tile).convert("RGB").resize((tile_w, tile_h), resample), (x, y))
            for j, line in enumerate(captions[r][c] if captions is not None else ()):
                text((x, y + tile_h + TEXT_INSET + j * line_height), line, tile_w)
    return grid


def _fit(draw: ImageDraw.ImageDraw, line: str, width: int, font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> str:
    """The longest start of `line` that `font` draws within `width` pixels."""
    while line and draw.textlength(line, font=font) > width:
        line = line[:-1]
    return line
