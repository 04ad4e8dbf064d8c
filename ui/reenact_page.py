"""The Reenact page: a source face (K frames of an indexed video, or uploaded photos of one person) rendered in the
pose of the session's last query and of each of its results, side by side with those driving faces.

"Best source frame" (indexed videos only): per driver, the video's frame whose pose is nearest the driver's is the
source (`ui.reenactment.reenact_best_source`); its strip then shows driver | chosen frame | result.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import streamlit as st

from model.data.errors import DataError
from model.data.face_crop import crop_face
from retrieval.search import Retriever
from ui.browse import VideoChoice, spread, video_ui
from ui.pictures import picture_rows
from ui.query import QueryResult
from ui.reenactment import ReenactResult, reenact, reenact_best_source
from ui.resources import QUERY_SLOT, forget, remembered, session_memo, video_table
from ui.settings import MAX_UPLOAD_MB, AppConfig
from ui.uploads import decode_upload, friendly, upload_name

SLOT = "reenact"
VIDEO, UPLOAD = "Frames of an indexed video", "Uploaded photos"
IMAGE_TYPES = ["jpg", "jpeg", "png"]
DEFAULT_SOURCE_FRAMES = 4  # K: the face embedder fuses several views (eq. 1); 4 covers a turn of the head
MAX_SOURCE_FRAMES = 8
COLUMNS = 4  # strips per row (each is 2-3 faces wide)


@dataclass(frozen=True)
class SourceInput:
    """The source face as the widgets gave it."""

    kind: Literal["video", "upload"]
    video: VideoChoice | None  # kind "video"
    rows: list[int]  # kind "video": the K frames' positions in the video (unused with best_source)
    best_source: bool
    files: list[tuple[str, bytes]]  # kind "upload": (file name, bytes) per photo

    @property
    def key(self) -> tuple:
        """The inputs that decide the result (uploads by content hash)."""
        if self.kind == "upload":
            return ("upload", tuple(hashlib.sha256(data).hexdigest() for _, data in self.files))
        return ("video", self.video.key, tuple(self.rows), self.best_source)


def source_ui(retriever: Retriever, config: AppConfig) -> SourceInput | None:
    """The source's widgets; None until photos are uploaded (an indexed video always gives frames)."""
    kind = st.radio("Source face", [VIDEO, UPLOAD], horizontal=True, key="reenact:source")
    if kind == UPLOAD:
        files = st.file_uploader(
            "Photos of the source person (JPEG or PNG)",
            type=IMAGE_TYPES,
            accept_multiple_files=True,
            key="reenact:upload",
            max_upload_size=MAX_UPLOAD_MB,
        )
        if not files:
            return None
        return SourceInput("upload", None, [], False, [(upload_name(f.name), f.getvalue()) for f in files])
    choice = video_ui(retriever, video_table(config), key="reenact")
    left, right = st.columns(2)
    best = right.checkbox(
        "Best source frame",
        key="reenact:best",
        help="For each driving face, use the one frame of this video whose pose is nearest to it: "
        "less distortion when source and driver poses differ.",
    )
    available = len(choice.frames)
    count = 1
    if available > 1:
        count = left.slider(
            "Source frames (K)",
            1,
            min(MAX_SOURCE_FRAMES, available),
            min(DEFAULT_SOURCE_FRAMES, available),
            key="reenact:k",
            disabled=best,
        )
    return SourceInput("video", choice, spread(count, available), best, [])


def compute(
    retriever: Retriever, source: SourceInput, drivers: list[np.ndarray]
) -> tuple[list[np.ndarray], ReenactResult]:
    """The source frames shown above the results (none with best source) and the reenactment."""
    model = retriever.model
    if source.kind == "upload":
        sources = [crop_face(decode_upload(data, name), model.size, source=name) for name, data in source.files]
        return sources, reenact(model, sources, drivers)
    video = source.video
    if source.best_source:
        codes = retriever.pose_codes(video.frames["id"].to_numpy())  # (M, dim): as indexed
        return [], reenact_best_source(model, codes, drivers, lambda rows: video.images(retriever, rows))
    sources = video.images(retriever, source.rows)
    return sources, reenact(model, sources, drivers)


def show(sources: list[np.ndarray], result: ReenactResult, query: QueryResult) -> None:
    """The source frames, then one strip per driver: driver | (chosen source) | result."""
    if sources:
        st.caption(f"Source: {len(sources)} frame(s), fused into one embedded face (eq. 1)")
        st.image(sources, width=96)
    renderer = "the generator G" if result.renderer == "generator" else "the pose embedder's decoder (eq. 2)"
    layout = "driver · chosen source frame · result" if result.chosen is not None else "driver · result"
    st.caption(f"Each picture: {layout}. Rendered by {renderer}.")
    labels = ["query"] + [f"#{hit.rank}  {hit.identity}  ·  {hit.video}/{hit.frame}" for hit in query.hits.itertuples()]
    with st.container(key="reenact_results"):
        picture_rows(result.strips(), labels, columns=COLUMNS)


def render(retriever: Retriever, config: AppConfig) -> None:
    """The page."""
    st.header("Reenact: a source face in the pose of the query and its results")
    held = remembered(QUERY_SLOT)
    if held is None:
        st.info("Run a query first (page *Query*): the query face and its results are the driving faces.")
        return
    query_key, query = held
    source = source_ui(retriever, config)
    if source is None:
        st.info("Upload one or more photos of the source person.")
        return
    drivers = [query.crop, *query.frames]
    try:
        with st.spinner(f"Rendering {len(drivers)} faces…"):
            sources, result = session_memo(SLOT, (query_key, source.key), lambda: compute(retriever, source, drivers))
    except DataError as err:
        forget(SLOT)
        st.error(friendly(err))
        return
    show(sources, result, query)
