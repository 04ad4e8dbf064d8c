"""The Overview page: what the index holds (counts per identity and video, the build's manifest) and a 2-D map of
its pose codes (PCA, `ui.pose_map`) where a click on a point shows that frame.

On a well-disentangled model, points group by pose rather than by person: colours (identities) mix everywhere.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from retrieval.search import Retriever
from ui.pose_map import SELECTION, selected_id
from ui.resources import pose_map, video_table
from ui.settings import AppConfig

MAX_LEGEND = 20  # identities listed in the map's legend; beyond, colours stay and the tooltip names the person
POINT_SIZE = 40  # marker area in square pixels
MAP_HEIGHT = 420  # the map's height in pixels: room for the structure of a few thousand points


def map_chart(points: pd.DataFrame, explained: np.ndarray) -> alt.Chart:
    """The pose map as an Altair scatter plot, coloured by identity, with a click selection named `SELECTION`."""
    pick = alt.selection_point(name=SELECTION, fields=["id"], on="click")
    legend = alt.Legend(title="identity") if points["identity"].nunique() <= MAX_LEGEND else None
    return (
        alt.Chart(points)
        .mark_circle(size=POINT_SIZE)
        .encode(
            x=alt.X("pc1:Q", title=f"pose PC 1 ({explained[0]:.0%} of the variance)"),
            y=alt.Y("pc2:Q", title=f"pose PC 2 ({explained[1]:.0%})"),
            color=alt.Color("identity:N", legend=legend),
            opacity=alt.condition(pick, alt.value(0.85), alt.value(0.25)),
            tooltip=["identity", "video", "frame"],
        )
        .add_params(pick)
        .properties(height=MAP_HEIGHT)
    )


def counts(videos: pd.DataFrame) -> None:
    """Frames per identity as a bar chart, and the table of videos."""
    per_identity = videos.groupby("identity", sort=True).agg(videos=("video", "size"), frames=("num_frames", "sum"))
    st.bar_chart(per_identity["frames"], x_label="identity", y_label="frames", height=240)
    st.dataframe(videos.rename(columns={"num_frames": "frames"}), hide_index=True, height=240, key="overview:videos")


def render(retriever: Retriever, config: AppConfig) -> None:
    """The page."""
    st.header("Overview: what the index holds")
    summary = retriever.summary()
    for column, (label, value) in zip(
        st.columns(5),
        [
            ("frames", summary.num_frames),
            ("identities", summary.num_identities),
            ("videos", summary.num_videos),
            ("pose dim", summary.dim),
            ("index", summary.index_type),
        ],
    ):
        column.metric(label, value)
    left, right = st.columns([3, 2])
    with left:
        st.subheader("Frames per identity")
        counts(video_table(config))
    with right:
        st.subheader("Manifest")
        st.json(retriever.manifest())
    st.subheader("Pose map (PCA of the pose codes)")
    points, explained = pose_map(config)
    if len(points) < summary.num_vectors:
        st.caption(f"A seeded sample of {len(points):,} of the {summary.num_vectors:,} frames.")
    plot, picked = st.columns([3, 1])
    with plot:
        event = st.altair_chart(
            map_chart(points, explained), on_select="rerun", selection_mode=SELECTION, key="overview:map"
        )
    frame_id = selected_id(event.selection)
    with picked:
        if frame_id is None:
            st.info("Click a point to see its frame.")
            return
        row = retriever.frames([frame_id])
        hit = row.iloc[0]
        st.image(
            retriever.hit_images(row)[0],
            caption=f"{hit['identity']}  ·  {hit['video']}/{hit['frame']}",
            width="stretch",
        )
