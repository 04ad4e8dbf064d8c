"""Statistics of a labelled frame collection's ground truth: how much of each label varies within videos.

Stage 1 of the paper (section 3.1) learns pose only from what changes between frames of one video: a parameter
that changes only from one video to the next (a smile held through each video) teaches the pose code nothing and
leaves it free to carry appearance. The within-video share of variance measures that per parameter.

Choices made:
- Variances are population variances (ddof 0), so a collection of equal-length videos splits its total variance
  exactly into the share within videos and the variance of the video means.
- Every video counts once in the mean, whatever its length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

VIDEO_KEYS = ("identity", "video")  # a video is one (identity, video) pair of the frame table
MIN_WITHIN_VIDEO_SHARE = 0.6  # below this, a parameter varies mostly between videos (SynthVox v2's target)


def within_video_share(labels: pd.DataFrame, columns: Sequence[str]) -> dict[str, float]:
    """Each label column's within-video share of variance, in [0, 1]:

        share(c) = mean over videos v of Var(c within v) / Var(c over all frames)

    1 when every video spans the collection's whole variation, 0 when each video holds one value. `labels` has
    one row per frame with the VIDEO_KEYS columns and the `columns` asked for; a column constant over the whole
    collection has no variance to share: NaN.
    """
    missing = [c for c in (*VIDEO_KEYS, *columns) if c not in labels.columns]
    assert not missing, f"labels lack columns {missing}"
    values = labels[list(columns)].astype(np.float64)
    within = values.groupby([labels[k] for k in VIDEO_KEYS], sort=False).var(ddof=0).mean()  # (C,) mean over videos
    total = values.var(ddof=0)  # (C,)
    return {c: float(within[c] / total[c]) if total[c] > 0.0 else float("nan") for c in columns}
