"""Decoding single frames: every kind of bad file gets a DataError naming it and the reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.data.errors import DataError
from model.data.images import decode_image, read_image, write_image


def test_round_trip_png(tmp_path: Path) -> None:
    img = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    write_image(tmp_path / "a.png", img)
    assert np.array_equal(read_image(tmp_path / "a.png"), img)


def test_grey_and_rgba_become_rgb(tmp_path: Path) -> None:
    Image.new("L", (5, 4), 7).save(tmp_path / "g.png")
    Image.new("RGBA", (5, 4), (1, 2, 3, 255)).save(tmp_path / "a.png")
    assert read_image(tmp_path / "g.png").shape == (4, 5, 3)
    assert read_image(tmp_path / "a.png")[0, 0].tolist() == [1, 2, 3]


def _truncated(path: Path) -> None:
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 90).save(path.with_suffix(".jpg"))
    data = path.with_suffix(".jpg").read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("hello, not a picture"), "not an image"),
        (_truncated, "corrupt or truncated"),
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: None, "no such file"),
    ],
    ids=["zero-bytes", "text", "truncated", "folder", "missing"],
)
def test_bad_images(tmp_path: Path, make, reason: str) -> None:
    path = tmp_path / "frame.jpg"
    make(path)
    with pytest.raises(DataError, match=reason) as err:
        read_image(path)
    assert err.value.path == path and str(err.value).startswith(str(path))


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("RGB", (100, 100)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(DataError, match="too large"):
        read_image(tmp_path / "big.png")


def test_bytes_decode_like_files_and_can_be_bounded_in_pixels(tmp_path: Path) -> None:
    img = np.random.default_rng(1).integers(0, 256, (12, 9, 3), dtype=np.uint8)
    write_image(tmp_path / "a.png", img)
    data = (tmp_path / "a.png").read_bytes()
    assert np.array_equal(decode_image(data, "upload.png"), img)
    with pytest.raises(DataError, match=r"image too large: 9x12 pixels, more than 100") as err:
        decode_image(data, "upload.png", max_pixels=100)
    assert err.value.path == Path("upload.png")
    for bad, reason in [(b"", "empty file"), (b"hello", "not an image"), (data[:60], "corrupt or truncated")]:
        with pytest.raises(DataError, match=reason):
            decode_image(bad, "upload.png")
