"""What the app loads once per process, and what each browser session remembers between reruns.

Streamlit re-executes the app script on every click. The model and the index load once per process
(`st.cache_resource`: one read-only `Retriever` shared by every session; FAISS, SQLite through SQLAlchemy's pool
and inference-mode torch all serve concurrent readers). Tables derived from the index (videos, the pose map) are
cached with it: the index a running UI serves does not change under it (restart it to see a new build).

A session's own results (its query, its reenactment) are kept by `session_memo`: one result per page, recomputed
only when that page's inputs change. Per session, so one user's uploads are never served to another, and bounded,
one result per page.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

import numpy as np
import pandas as pd
import streamlit as st

from model.evaluation.landmarks import LandmarkModel, LandmarksUnavailable
from retrieval.search import Retriever
from ui.pose_map import map_points, sample_ids
from ui.settings import AppConfig

T = TypeVar("T")

QUERY_SLOT = "query"  # the session's last query: the Query page writes it, the Reenact page drives faces with it


@st.cache_resource(show_spinner="Loading the model and the index…")
def load_retriever(config: AppConfig) -> Retriever:
    """The index and model of `config`, opened once per process (a `DataError` names what is unusable)."""
    return Retriever(config.index_dir, config.checkpoint, device=config.device)


@st.cache_resource(show_spinner=False)
def video_table(config: AppConfig) -> pd.DataFrame:
    """Every indexed video with its frame count (`Retriever.videos`): browsing and counts read it on every rerun."""
    return load_retriever(config).videos()


@st.cache_resource(show_spinner="Projecting the pose codes…")
def pose_map(config: AppConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """The 2-D PCA map of (a sample of) the index's pose codes and its axes' explained variance (`ui.pose_map`)."""
    retriever = load_retriever(config)
    ids = sample_ids(retriever.frame_ids())
    return map_points(ids, retriever.pose_codes(ids), retriever.frames(ids))


@st.cache_resource(show_spinner="Loading dlib's landmark model…")
def landmark_judge() -> LandmarkModel | str:
    """dlib's landmarks and head pose (`model.evaluation.landmarks`), loaded once; what to install when missing."""
    try:
        return LandmarkModel()
    except LandmarksUnavailable as err:
        return f"head pose needs dlib, which is not available ({err})"


def session_memo(slot: str, key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()`'s result, remembered in this session's `slot` while `key` (the inputs) stays the same.

    An exception is not remembered: the same inputs are tried again on the next rerun.
    """
    held = st.session_state.get(_slot(slot))
    if held is not None and held[0] == key:
        return held[1]
    value = compute()
    st.session_state[_slot(slot)] = (key, value)
    return value


def remembered(slot: str) -> tuple[Hashable, object] | None:
    """The last (key, result) `session_memo` kept in `slot` for this session; None before the first."""
    return st.session_state.get(_slot(slot))


def forget(slot: str) -> None:
    """Drop `slot`'s result (its inputs went away, e.g. the upload was removed)."""
    st.session_state.pop(_slot(slot), None)


def _slot(slot: str) -> str:
    return f"memo:{slot}"
