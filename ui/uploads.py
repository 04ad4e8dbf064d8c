"""Turning a browser upload into a picture, safely: bounded in bytes and pixels, decoded in memory, never saved.

An upload's name is only a label for messages: no path a user sends is ever opened. Every failure is a
`DataError` whose one line the pages show as a friendly message (`friendly`), and the app carries on.
"""

from __future__ import annotations

from pathlib import PurePath

import numpy as np

from model.data.errors import DataError
from model.data.images import decode_image
from ui.settings import MAX_UPLOAD_BYTES, MAX_UPLOAD_MB, MAX_UPLOAD_PIXELS


def upload_name(name: str) -> str:
    """The file name a browser sent, without any folders (a label, never a path to open)."""
    return PurePath(name.replace("\\", "/")).name or "upload"


def decode_upload(data: bytes, name: str) -> np.ndarray:
    """An uploaded file's bytes as an RGB uint8 image `(H, W, 3)`.

    A `DataError` labelled with the file's name when it is too large (bytes or pixels), empty, not an image or
    corrupt.
    """
    label = upload_name(name)
    if len(data) > MAX_UPLOAD_BYTES:
        raise DataError(label, f"{len(data) / 2**20:.1f} MB is more than the {MAX_UPLOAD_MB} MB upload limit")
    return decode_image(data, label, max_pixels=MAX_UPLOAD_PIXELS)


def friendly(err: DataError) -> str:
    """The message a page shows for a file it cannot use: the file, the reason, and that nothing broke."""
    name = (err.path.name or str(err.path)).replace("`", "'")  # shown as code: markdown in a name stays literal
    return f"Could not use `{name}`: {err.reason}. Try another picture."
