"""`model.image_grid`: canvas size, where each tile lands, and text drawn in its band and nowhere else."""

from __future__ import annotations

import numpy as np
from PIL import Image

from model.image_grid import CAPTION_PADDING, LINE_HEIGHT, ROW_LABEL_WIDTH, image_grid

WHITE = (255, 255, 255)


def _tile(value: int, size: tuple[int, int] = (8, 6)) -> np.ndarray:
    """A uniform (H, W, 3) tile of grey `value`, `size` as (width, height)."""
    return np.full((size[1], size[0], 3), value, np.uint8)


def _is_white(pixels: np.ndarray) -> bool:
    return bool((pixels == 255).all())


def test_size_and_tile_positions_follow_rows_columns_and_gutter() -> None:
    tiles = [[_tile(10), _tile(20), _tile(30)], [_tile(40), _tile(50)]]  # a short second row
    grid = np.asarray(image_grid(tiles, tile_size=(8, 6), gutter=3))
    assert grid.shape == (2 * (6 + 3) + 3, 3 * (8 + 3) + 3, 3)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            x, y = 3 + c * (8 + 3), 3 + r * (6 + 3)
            assert np.array_equal(grid[y : y + 6, x : x + 8], tile), (r, c)
            assert _is_white(grid[y - 3 : y, x : x + 8]) and _is_white(grid[y : y + 6, x - 3 : x])  # gutter above, left
    assert _is_white(grid[3 + 9 : 3 + 9 + 6, 3 + 2 * 11 : 3 + 2 * 11 + 8])  # the missing third tile of row two


def test_tiles_are_resized_to_the_tile_size_and_none_stays_blank() -> None:
    tiles = [[_tile(90, (4, 4)), None], [None, _tile(200, (20, 10))]]
    grid = np.asarray(image_grid(tiles, tile_size=16, gutter=2))
    assert grid.shape == (2 * 18 + 2, 2 * 18 + 2, 3)
    assert (grid[2:18, 2:18] == 90).all() and (grid[20:36, 20:36] == 200).all()
    assert _is_white(grid[2:18, 20:36]) and _is_white(grid[20:36, 2:18])


def test_label_bands_shift_the_tiles_and_hold_the_text() -> None:
    tiles = [[_tile(0, (32, 32))], [_tile(0, (32, 32))]]
    grid = np.asarray(image_grid(tiles, tile_size=32, gutter=2, column_labels=["pose"], row_labels=["a", "b\nc"]))
    left, top = ROW_LABEL_WIDTH, LINE_HEIGHT
    assert grid.shape == (top + 2 * 34 + 2, left + 34 + 2, 3)
    assert (grid[top + 2 : top + 34, left + 2 : left + 34] == 0).all()  # tile (0, 0) after both bands
    assert not _is_white(grid[:top, left + 2 : left + 34])  # the column label above its column
    assert _is_white(grid[:top, :left])  # ...and not over the row labels' band
    second_row = top + 2 + 34
    assert not _is_white(grid[second_row : second_row + LINE_HEIGHT, :left])  # "b" beside its row
    assert not _is_white(grid[second_row + LINE_HEIGHT : second_row + 2 * LINE_HEIGHT, :left])  # "c" on the next line


def test_captions_sit_under_their_tile_in_a_band_as_high_as_the_longest() -> None:
    tiles = [[_tile(0, (40, 40)), _tile(0, (40, 40))]]
    captions = [[["#1 0.9", "alice"], []]]
    grid = np.asarray(image_grid(tiles, tile_size=40, gutter=4, captions=captions, line_height=12))
    band = 2 * 12 + CAPTION_PADDING
    assert grid.shape == (4 + 40 + band + 4, 2 * 44 + 4, 3)
    under_first = grid[44 : 44 + band, 4:44]
    assert not _is_white(under_first[:12]) and not _is_white(under_first[12:24])  # both lines drawn
    assert _is_white(grid[44 : 44 + band, 48:88])  # the second tile has no caption


def test_text_is_cut_to_the_width_it_has() -> None:
    tiles = [[_tile(0, (24, 24)), _tile(0, (24, 24))]]
    grid = np.asarray(image_grid(tiles, tile_size=24, gutter=6, column_labels=["a label far too long", ""]))
    assert not _is_white(grid[:LINE_HEIGHT, 6:30])
    assert _is_white(grid[:LINE_HEIGHT, 30:])  # nothing runs into the gutter or the next column


def test_the_picture_is_rgb() -> None:
    grid = image_grid([[np.zeros((5, 5), np.uint8)]], tile_size=5, gutter=1)  # a grey tile is drawn in RGB
    assert isinstance(grid, Image.Image) and grid.mode == "RGB" and grid.getpixel((0, 0)) == WHITE
