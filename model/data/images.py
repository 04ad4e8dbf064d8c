"""Reading and writing single frames: the one place that decodes an image file.

Frames are RGB `uint8` arrays `(H, W, 3)`. Pillow decodes (it reports truncated and non-image files precisely);
its decompression-bomb guard stays on. Files (`read_image`) and bytes that never touched the disk (`decode_image`,
the browser's uploads) go through the same decoder, so both fail the same way.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from model.data.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file into an RGB array `(H, W, 3)` uint8; a `DataError` names the file and the reason."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise DataError(path, "empty file (0 bytes)")
        with open(path, "rb") as file:
            return _decode(file, path, max_pixels=None)
    except FileNotFoundError as err:
        raise DataError(path, "no such file") from err
    except IsADirectoryError as err:
        raise DataError(path, "is a folder, not an image") from err


def decode_image(data: bytes, name: str | Path, *, max_pixels: int | None = None) -> np.ndarray:
    """Decode image bytes that never touched the disk (an upload) as `read_image` decodes a file.

    `name` labels the `DataError`; `max_pixels` refuses larger pictures from their header, before decoding a pixel
    (a tighter bound than Pillow's own decompression-bomb limit, which stays on too).
    """
    if not data:
        raise DataError(name, "empty file (0 bytes)")
    return _decode(io.BytesIO(data), name, max_pixels=max_pixels)


def _decode(file: BinaryIO, name: str | Path, *, max_pixels: int | None) -> np.ndarray:
    """The one decoder behind `read_image` and `decode_image`: every failure is a `DataError` naming `name`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as img:
                if max_pixels is not None and img.width * img.height > max_pixels:
                    raise DataError(name, f"image too large: {img.width}x{img.height} pixels, more than "
                                          f"{max_pixels:,}")
                img.load()  # decode now: a truncated file fails here, not later
                return np.asarray(img.convert("RGB"))
    except DataError:
        raise
    except UnidentifiedImageError as err:
        raise DataError(name, "not an image Pillow can decode") from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataError(name, f"image too large to decode safely ({err})") from err
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data
        raise DataError(name, f"corrupt or truncated image ({err})") from err


def write_image(path: str | Path, img: np.ndarray) -> None:
    """Encode an RGB `(H, W, 3)` uint8 array by the file's suffix (PNG lossless, JPEG quality 95)."""
    path = Path(path)
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8, (img.shape, img.dtype)
    options = {"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {"compress_level": 1}
    Image.fromarray(img).save(path, **options)
