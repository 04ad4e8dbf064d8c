"""Captioned pictures laid out in rows, the way every page shows faces.

Each row gets its own `st.columns`, so a caption that wraps onto two lines pushes down its own row only and every
row stays aligned (columns filled top to bottom would let pictures drift between rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st


def picture_rows(images: Sequence[np.ndarray], captions: Sequence[str], *, columns: int) -> None:
    """Draw RGB uint8 `images` with their `captions`, `columns` per row, each as wide as its column."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    for start in range(0, len(images), columns):
        for column, image, caption in zip(
            st.columns(columns), images[start : start + columns], captions[start : start + columns]
        ):
            column.image(image, caption=caption, width="stretch")
