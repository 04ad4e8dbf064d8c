"""The Query page: a face in (an uploaded photo, or a frame browsed from the index), the k indexed frames in the
nearest pose out, as a grid of faces with score, identity, video and frame.

A query runs as soon as its inputs are complete and is remembered for the session (`session_memo`), so the
Reenact page can drive faces with it. A file that cannot be used shows a message naming it; the page stays usable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from model.data.errors import DataError
from retrieval.hit_rules import HitRules
from retrieval.search import Retriever
from ui.browse import frame_ui, video_ui
from ui.pictures import picture_rows
from ui.pose_overlay import draw_pose, pose_caption
from ui.query import QueryResult, run_query
from ui.resources import QUERY_SLOT, forget, landmark_judge, remembered, session_memo, video_table
from ui.settings import MAX_UPLOAD_MB, AppConfig
from ui.uploads import decode_upload, friendly, upload_name

UPLOAD, BROWSE = "Upload a photo", "A frame of the index"
IMAGE_TYPES = ["jpg", "jpeg", "png"]
DEFAULT_K = 10
MAX_K = 50
COLUMNS = 6  # faces per row of the results grid
MOMENT_S = 1.0  # "collapse near duplicates": hits of one video within a second of a better one are one moment


@dataclass(frozen=True)
class QueryInput:
    """A complete query as the widgets gave it."""

    kind: Literal["upload", "frame"]
    name: str  # the upload's file name, or "identity/video/frame"
    image: np.ndarray | None  # the browsed frame (uploads are decoded when the query runs)
    data: bytes | None  # the upload's bytes
    identity: str | None  # known for a frame of the index
    k: int
    other_identities: bool
    rules: HitRules

    @property
    def key(self) -> tuple:
        """The inputs that decide the result (the upload by content hash)."""
        content = hashlib.sha256(self.data).hexdigest() if self.data is not None else self.name
        return (self.kind, content, self.k, self.other_identities, self.rules)


def query_ui(retriever: Retriever, config: AppConfig) -> QueryInput | None:
    """The query's widgets; None until a photo is uploaded (browsing always has a frame)."""
    source = st.radio("Query face", [UPLOAD, BROWSE], horizontal=True, key="query:source")
    left, right = st.columns([3, 1])
    k = right.slider("Results (k)", 1, MAX_K, DEFAULT_K, key="query:k")
    other = right.checkbox(
        "Other identities only",
        value=True,
        key="query:other",
        help="Drop frames of the query's own identity (known for a frame of the index).",
    )
    rules = rules_ui(right, video_table(config))
    with left:
        if source == UPLOAD:
            file = st.file_uploader(
                "Photo with a face (JPEG or PNG)", type=IMAGE_TYPES, key="query:upload", max_upload_size=MAX_UPLOAD_MB
            )
            if file is None:
                return None
            return QueryInput("upload", upload_name(file.name), None, file.getvalue(), None, k, other, rules)
        choice = video_ui(retriever, video_table(config), key="query")
        row = frame_ui(choice, key="query")
        image = choice.images(retriever, [row])[0]
        st.image(image, caption="query frame", width=160)
        name = f"{choice.identity}/{choice.video}/{choice.frames['frame'].iloc[row]}"
        return QueryInput("frame", name, image, None, choice.identity, k, other, rules)


def rules_ui(column: DeltaGenerator, videos: pd.DataFrame) -> HitRules:
    """The diversity and identity controls: near duplicates collapsed by default, per-video cap, identity filters."""
    collapse = column.checkbox(
        "Collapse near duplicates",
        value=True,
        key="query:collapse",
        help=f"Show one frame per moment: hits within {MOMENT_S:g} s of a better hit of the "
        "same video are hidden. Untick to see every frame.",
    )
    per_video = column.number_input(
        "Hits per video (0: any)", min_value=0, max_value=MAX_K, value=0, step=1, key="query:per_video"
    )
    identities = sorted(videos["identity"].unique())
    with column.expander("Identities"):
        only = st.multiselect("Only these", identities, key="query:only")
        exclude = st.multiselect("Never these", identities, key="query:exclude")
    return HitRules(
        per_video=int(per_video) or None,
        moment_s=MOMENT_S if collapse else None,
        exclude=frozenset(exclude),
        only=frozenset(only) if only else None,
    )


def run(retriever: Retriever, query: QueryInput) -> QueryResult:
    """Run `query`: uploads are decoded and face-cropped, index frames go in as the crops they are."""
    image = decode_upload(query.data, query.name) if query.kind == "upload" else query.image
    return run_query(
        retriever,
        image,
        query.k,
        crop=query.kind == "upload",
        source=query.name,
        identity=query.identity,
        other_identities=query.other_identities,
        rules=query.rules,
    )


def show_results(result: QueryResult) -> None:
    """The query face then its hits, captioned, in rows of `COLUMNS` (with dlib's head pose drawn when asked); the
    grid as a PNG download; the table."""
    with st.container(key="query_results"):
        captions = ["query"] + [
            f"#{hit.rank}  {hit.score:.3f}  ·  {hit.identity}  ·  {hit.video}/{hit.frame}"
            for hit in result.hits.itertuples()
        ]
        faces = [result.crop, *result.frames]
        if st.toggle(
            "Show head pose (dlib)",
            key="query:pose",
            help="dlib's landmarks and facing arrow on every face, and yaw, pitch, roll and mouth opening "
            "beside the query's (in brackets: the difference).",
        ):
            faces, captions = with_pose(faces, captions)
        picture_rows(faces, captions, columns=COLUMNS)
    grid, table = st.columns(2)
    grid.download_button(
        "Download the grid (PNG)",
        result.grid_png(),
        file_name="posedex_query.png",
        mime="image/png",
        key="query:download",
    )
    table.download_button(
        "Download the hits (CSV)", result.csv(), file_name="posedex_hits.csv", mime="text/csv", key="query:download_csv"
    )
    st.dataframe(result.hits.drop(columns=["id"]), hide_index=True, key="query:table")


def with_pose(faces: list[np.ndarray], captions: list[str]) -> tuple[list[np.ndarray], list[str]]:
    """The faces with dlib's landmarks and facing arrow drawn, and each caption followed by its pose beside the
    query's (the first face); unchanged, with a note, when dlib is not installed."""
    judge = landmark_judge()
    if isinstance(judge, str):
        st.caption(f"{judge}: pip install 'posedex[eval]'")
        return faces, captions
    measures = [judge.measure(face) for face in faces]
    drawn = [draw_pose(face, measure) for face, measure in zip(faces, measures)]
    texts = [pose_caption(measures[0])] + [pose_caption(m, measures[0]) for m in measures[1:]]
    return drawn, [f"{caption}\n\n{text}" for caption, text in zip(captions, texts)]


def render(retriever: Retriever, config: AppConfig) -> None:
    """The page."""
    st.header("Query: other faces in this pose")
    query = query_ui(retriever, config)
    if query is None:
        last = remembered(QUERY_SLOT)
        if last is None:
            st.info("Upload a photo with a face, or switch to *A frame of the index*.")
            return
        st.caption("Your last query (upload a photo or pick a frame to run a new one):")
        show_results(last[1])
        return
    try:
        with st.spinner("Searching…"):
            result = session_memo(QUERY_SLOT, query.key, lambda: run(retriever, query))
    except DataError as err:
        forget(QUERY_SLOT)  # the current query failed: its predecessor must not drive reenactments unnoticed
        st.error(friendly(err))
        return
    if query.other_identities and not result.filtered:
        st.caption("A photo's identity is unknown to the index, so no identity was dropped from the hits.")
    show_results(result)
