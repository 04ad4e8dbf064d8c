"""The Disentangle page: the paper's Fig. 7 for a chosen video. The embedded face of K of its frames, each frame's
warp field as a colour flow, the face warped into each frame's pose, and the reconstruction (`ui.disentangle`).

If identity and pose are disentangled, the embedded face is a frontal, neutral face of the person, and the
reconstructions follow each frame's pose through the warps alone.
"""

from __future__ import annotations

import streamlit as st

from retrieval.search import Retriever
from ui.browse import spread, video_ui
from ui.disentangle import FLOW_FULL_SCALE, Figure7, figure7
from ui.resources import session_memo, video_table
from ui.settings import AppConfig

SLOT = "disentangle"
DEFAULT_SOURCE_FRAMES = 4  # K views fused into the embedded face
MAX_SOURCE_FRAMES = 8
DEFAULT_TARGETS = 8  # target frames (columns of the figure)
MAX_TARGETS = 16
CELL_PX = 96  # width each picture is shown at


def show(figure: Figure7) -> None:
    """Fig. 7 as rows of pictures: sources and their warps with the embedded face, then per target frame its warp,
    the warped face and the reconstruction."""
    st.subheader("Face embedder: K source frames → embedded face")
    st.image(
        [*figure.sources, figure.face],
        caption=[*(f"x{k + 1}" for k in range(len(figure.sources))), "embedded face f"],
        width=CELL_PX,
    )
    st.image(figure.source_flows, caption=[f"T{k + 1}" for k in range(len(figure.source_flows))], width=CELL_PX)
    st.subheader("Pose embedder: the embedded face warped back into each frame")
    n = len(figure.targets)
    for label, row in (
        ("frame", figure.targets),
        ("warp T⁻¹ (colour)", figure.flows),
        ("warped face T⁻¹(f)", figure.warped),
        ("reconstruction", figure.reconstructions),
    ):
        st.image(row, caption=[label] * n, width=CELL_PX)
    st.caption(
        f"Flow colours: hue is the direction each pixel is fetched from, saturation its length (full at "
        f"{FLOW_FULL_SCALE / 2:.1%} of the image width, in both rows); white is no motion."
    )


def render(retriever: Retriever, config: AppConfig) -> None:
    """The page."""
    st.header("Disentangle: identity and pose of one video (Fig. 7)")
    choice = video_ui(retriever, video_table(config), key="disentangle")
    available = len(choice.frames)
    left, right = st.columns(2)
    sources, targets = 1, 1
    if available > 1:
        sources = left.slider(
            "Source frames (K)",
            1,
            min(MAX_SOURCE_FRAMES, available),
            min(DEFAULT_SOURCE_FRAMES, available),
            key="disentangle:k",
        )
        targets = right.slider(
            "Frames shown", 1, min(MAX_TARGETS, available), min(DEFAULT_TARGETS, available), key="disentangle:targets"
        )
    source_rows, target_rows = spread(sources, available), spread(targets, available)
    with st.spinner("Embedding and reconstructing…"):
        figure = session_memo(
            SLOT,
            (choice.key, tuple(source_rows), tuple(target_rows)),
            lambda: figure7(
                retriever.model, choice.images(retriever, source_rows), choice.images(retriever, target_rows)
            ),
        )
    with st.container(key="disentangle_figure"):
        show(figure)
