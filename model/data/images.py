"""Reading and writing single frames: the one place that decodes an image file.

Frames are RGB `uint8` arrays `(H, W, 3)`. Pillow decodes (it reports truncated and non-image files precisely);
its decompression-bomb guard stays on.
"""

from __future__ import annotations

import warnings
from pathlib import Path

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
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()  # decode now: a truncated file fails here, not later
                return np.asarray(img.convert("RGB"))
    except DataError:
        raise
    except FileNotFoundError as err:
        raise DataError(path, "no such file") from err
    except IsADirectoryError as err:
        raise DataError(path, "is a folder, not an image") from err
    except UnidentifiedImageError as err:
        raise DataError(path, "not an image Pillow can decode") from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataError(path, f"image too large to decode safely ({err})") from err
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data
        raise DataError(path, f"corrupt or truncated image ({err})") from err


def write_image(path: str | Path, img: np.ndarray) -> None:
    """Encode an RGB `(H, W, 3)` uint8 array by the file's suffix (PNG lossless, JPEG quality 95)."""
    path = Path(path)
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8, (img.shape, img.dtype)
    options = {"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {"compress_level": 1}
    Image.fromarray(img).save(path, **options)
