"""One query as the UI runs it: a picture in; the face the model saw, the ranked hits and their frames out.

The whole path a browser query takes (uploaded bytes decoded by `ui.uploads`, then `run_query`, then
`QueryResult.grid_png`) is what `benchmarks/ui_query_speed.py` times against a bare `Retriever.search`.

Choices:
- A photo is face-cropped exactly as `index query` crops it (`crop_face`, the crop `daegan prepare` made of the
  indexed frames); a frame taken from the index is already such a crop and goes in as it is.
- Hit frames come from `Retriever.hit_images`, which reads only inside the index's recorded collection roots.
- "Other identities only" needs the query's identity: known for a frame of the index, unknown for a photo, whose
  hits are then all shown (`QueryResult.filtered` says which happened).
- The page's diversity and identity controls travel as one `HitRules`, so the UI and `index query` answer alike.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from model.data.face_crop import crop_face
from retrieval.grid import hits_grid
from retrieval.hit_rules import HitRules
from retrieval.search import Retriever


@dataclass(frozen=True)
class QueryResult:
    """What a query found, ready to show."""

    crop: np.ndarray  # (S, S, 3) uint8: the query face as the model saw it
    hits: pd.DataFrame  # `retrieval.search.HIT_COLUMNS`, best first
    frames: list[np.ndarray]  # RGB uint8 frame of each hit row, read from inside the index's roots
    identity: str | None  # the query's identity when known (a frame of the index), else None
    filtered: bool  # True when the query's own identity was dropped from the hits

    def grid(self) -> Image.Image:
        """The query and its hits as one captioned picture (`retrieval.grid.hits_grid`)."""
        return hits_grid(self.crop, self.hits, self.frames)

    def csv(self) -> bytes:
        """The hits as CSV (UTF-8): what the results download offers."""
        return self.hits.to_csv(index=False).encode()

    def grid_png(self) -> bytes:
        """`grid()` encoded as PNG bytes: what the download button offers."""
        buffer = io.BytesIO()
        self.grid().save(buffer, format="PNG", compress_level=1)  # speed over size: made on every query
        return buffer.getvalue()


def run_query(
    retriever: Retriever,
    image: np.ndarray,
    k: int,
    *,
    crop: bool,
    source: str,
    identity: str | None = None,
    other_identities: bool = False,
    rules: HitRules | None = None,
) -> QueryResult:
    """The `k` indexed frames nearest in pose to the face in `image` (RGB uint8 `(H, W, 3)`).

    `crop`: find and cut the face first (a photo) or take `image` as the crop it is (a frame of the index).
    `source` names the picture in the `DataError` raised when it holds no face. `identity` is the query's own
    identity when known; with `other_identities` its frames are dropped from the hits. `rules` cap and filter the
    hits (`retrieval.hit_rules`).
    """
    face = crop_face(image, retriever.model.size, source=source) if crop else image
    filtered = other_identities and identity is not None
    hits = retriever.search(face, k, other_identities=filtered, identity=identity, rules=rules, crop=False)
    return QueryResult(face, hits, retriever.hit_images(hits), identity, filtered)
