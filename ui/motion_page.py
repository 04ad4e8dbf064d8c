"""The Motion page: upload a clip, see the segments of indexed videos that move like it, each playing beside the
clip, and reenact the clip's face along any of them (`ui.motion`)."""

from __future__ import annotations

import hashlib

import streamlit as st

from model.data.errors import DataError
from retrieval.search import Retriever
from ui.motion import CLIP_SUFFIXES, MotionAnswer, reenact_along, run_motion_query
from ui.resources import forget, session_memo
from ui.settings import MAX_UPLOAD_MB, AppConfig
from ui.uploads import friendly, upload_name

SLOT = "motion"
DEFAULT_K = 4
MAX_K = 12


def render(retriever: Retriever, config: AppConfig) -> None:
    """The page."""
    st.header("Motion: other faces that move like this clip")
    left, right = st.columns([3, 1])
    k = right.slider("Segments", 1, MAX_K, DEFAULT_K, key="motion:k")
    one_each = right.checkbox("One segment per video", value=True, key="motion:per_video")
    file = left.file_uploader(
        "A short video of a face (a few seconds)",
        type=[s[1:] for s in CLIP_SUFFIXES],
        key="motion:upload",
        max_upload_size=MAX_UPLOAD_MB,
    )
    if file is None:
        st.info(
            "Upload a clip: its face is followed, and every indexed video is searched for a stretch whose "
            "pose moves the same way (dynamic time warping over the pose codes)."
        )
        return
    data, name = file.getvalue(), upload_name(file.name)
    left.video(data)
    key = (hashlib.sha256(data).hexdigest(), k, one_each)
    try:
        with st.spinner("Following the face and searching every video…"):
            answer = session_memo(
                SLOT, key, lambda: run_motion_query(retriever, data, name, k, per_video=1 if one_each else None)
            )
    except DataError as err:
        forget(SLOT)
        st.error(friendly(err))
        return
    show_segments(retriever, answer)


def show_segments(retriever: Retriever, answer: MotionAnswer) -> None:
    """Each segment: its caption, the clip | segment animation, and a button that reenacts the clip along it."""
    for row, segment in enumerate(answer.found.segments.itertuples()):
        st.subheader(
            f"#{segment.rank}  {segment.score:.3f}  ·  {segment.identity}  ·  {segment.video}  "
            f"frames {segment.start_frame}-{segment.end_frame}"
        )
        play, reenacted = st.columns(2)
        play.image(answer.side_by_side_gif(row), caption="the clip | this segment")
        if reenacted.button("Reenact the clip's face along this segment", key=f"motion:reenact:{row}"):
            reenacted.image(reenact_along(retriever, answer, row), caption="segment | the clip's face in its pose")
