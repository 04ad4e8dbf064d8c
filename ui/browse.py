"""Picking from the index by browsing: identity, then video, then frame. Shared by every page that takes a face
from the index rather than from an upload.

Widgets return what was chosen (`*_ui`); `spread` picks frames evenly over a video, so a short slider covers a
whole clip. Frames are read with `Retriever.hit_images`, so browsing, like every picture the UI shows, reads
nothing outside the index's collection roots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from retrieval.search import Retriever


@dataclass(frozen=True)
class VideoChoice:
    """One indexed video and its frames in order (`Retriever.video_frames`: id, path, frame, time_s)."""

    identity: str
    video: str
    frames: pd.DataFrame

    @property
    def key(self) -> tuple[str, str]:
        """What identifies the choice (for remembering results computed from it)."""
        return (self.identity, self.video)

    def images(self, retriever: Retriever, rows: list[int]) -> list[np.ndarray]:
        """The frames at positions `rows` of `frames`, RGB uint8, read from inside the index's roots."""
        return retriever.hit_images(self.frames.iloc[rows])


def video_ui(retriever: Retriever, videos: pd.DataFrame, *, key: str) -> VideoChoice:
    """Identity and video select boxes (side by side); the video's frames come with the choice.

    `videos` is `Retriever.videos()`; `key` keeps the widgets of different pages apart.
    """
    left, right = st.columns(2)
    identities = videos["identity"].drop_duplicates().tolist()
    identity = left.selectbox("Identity", identities, key=f"{key}:identity")
    names = videos.loc[videos["identity"] == identity, "video"].tolist()
    counts = dict(zip(names, videos.loc[videos["identity"] == identity, "num_frames"]))
    video = right.selectbox(
        "Video", names, key=f"{key}:video", format_func=lambda name: f"{name} ({counts[name]} frames)"
    )
    return VideoChoice(identity, video, retriever.video_frames(identity, video))


def frame_ui(choice: VideoChoice, *, key: str) -> int:
    """A slider over the video's frame numbers; returns the chosen row of `choice.frames`."""
    numbers = choice.frames["frame"].tolist()
    if len(numbers) == 1:
        st.caption(f"Frame {numbers[0]} (the video's only frame)")
        return 0
    number = st.select_slider("Frame", options=numbers, key=f"{key}:frame")
    return numbers.index(number)


def spread(count: int, available: int) -> list[int]:
    """`count` indices evenly spaced over `range(available)` (all of them when there are fewer), ascending."""
    if available < 1 or count < 1:
        return []
    return sorted({int(round(i)) for i in np.linspace(0, available - 1, min(count, available))})
