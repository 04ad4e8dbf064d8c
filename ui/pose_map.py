"""A 2-D map of the index's pose codes: their first two principal components, one point per frame.

Choices:
- PCA by NumPy's SVD of the centred codes (no scikit-learn): exact, and instant for the few thousand points drawn.
- Each component's sign is fixed (its largest loading positive), so the same index always draws the same map.
- At most `MAP_MAX_POINTS` frames are drawn, a seeded sample: a browser chart of millions of points would stall.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

MAP_MAX_POINTS = 5_000  # frames drawn on the map; beyond this a seeded sample
MAP_SEED = 0  # the sample's seed: the same index gives the same map
SELECTION = "frame"  # name of the chart's click selection (its field is the frame id)


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project `vectors` (N, dim) onto their first two principal components.

    Returns the coordinates `(N, 2)` and the share of the variance each component explains `(2,)`. Fewer than
    two points, or codes that do not vary, give zeros for the missing components.
    """
    assert vectors.ndim == 2, vectors.shape
    x = vectors.astype(np.float64) - vectors.mean(axis=0)  # (N, dim), centred
    _, singular, components = np.linalg.svd(x, full_matrices=False)  # components: (r, dim), r = min(N, dim)
    components = components[:2]
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    components = components * signs[:, None]  # deterministic orientation
    xy = np.zeros((len(vectors), 2))
    xy[:, : len(components)] = x @ components.T  # (N, 2)
    total = float((singular**2).sum())
    explained = np.zeros(2)
    if total > 0:
        explained[: len(components)] = singular[:2] ** 2 / total
    return xy.astype(np.float32), explained


def sample_ids(ids: np.ndarray, limit: int = MAP_MAX_POINTS, seed: int = MAP_SEED) -> np.ndarray:
    """`ids` when there are at most `limit`, else a seeded sample of `limit` of them, ascending."""
    if len(ids) <= limit:
        return ids
    return np.sort(np.random.default_rng(seed).choice(ids, size=limit, replace=False))


def map_points(ids: np.ndarray, vectors: np.ndarray, meta: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The map's table: id, pc1, pc2, identity, video, frame per point (`meta` rows in `ids` order), and the
    explained variance of the two axes."""
    xy, explained = pca_2d(vectors)
    table = pd.DataFrame(
        {
            "id": ids,
            "pc1": xy[:, 0],
            "pc2": xy[:, 1],
            "identity": meta["identity"].to_numpy(),
            "video": meta["video"].to_numpy(),
            "frame": meta["frame"].to_numpy(),
        }
    )
    return table, explained


def selected_id(selection: Mapping) -> int | None:
    """The frame id a click on the map selected, from the chart's selection state; None when nothing is selected.

    Streamlit reports a point selection as ``{SELECTION: [{"id": ...}, ...]}``; the first point wins.
    """
    points = selection.get(SELECTION) or []
    for point in points:
        if isinstance(point, Mapping) and point.get("id") is not None:
            return int(point["id"])
    return None
