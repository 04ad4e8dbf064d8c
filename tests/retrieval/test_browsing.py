"""`Retriever`'s browsing answers (counts, videos, frames, stored pose codes) against the rows the fixture indexed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from retrieval.search import IndexSummary, Retriever


def test_summary_counts_what_was_indexed(built, retriever: Retriever) -> None:
    *_, frames, vectors, _ = built
    assert retriever.summary() == IndexSummary(
        num_frames=24, num_identities=3, num_videos=6, num_vectors=24, dim=vectors.shape[1], index_type="flat"
    )
    assert len(frames) == 24


def test_manifest_is_the_file_beside_the_index(built, retriever: Retriever) -> None:
    _, index, *_ = built
    manifest = retriever.manifest()
    assert manifest == json.loads((index / "manifest.json").read_text())
    assert manifest["count"] == 24


def test_videos_list_every_video_with_its_frame_count(built, retriever: Retriever) -> None:
    *_, frames, _, _ = built
    videos = retriever.videos()
    assert list(videos.columns) == ["identity", "video", "num_frames"]
    expected = frames.groupby(["identity", "video"], sort=True).size()
    assert list(zip(videos["identity"], videos["video"])) == expected.index.tolist()  # sorted
    assert videos["num_frames"].tolist() == expected.tolist() == [4] * 6


def test_video_frames_are_one_videos_frames_in_order(built, retriever: Retriever) -> None:
    *_, frames, _, ids = built
    identity, video = frames.loc[13, ["identity", "video"]]
    mine = frames[(frames["identity"] == identity) & (frames["video"] == video)].sort_values("frame")
    found = retriever.video_frames(identity, video)
    assert list(found.columns) == ["id", "path", "frame", "time_s"]
    assert found["id"].tolist() == ids[mine.index].tolist()
    assert found["frame"].tolist() == mine["frame"].tolist()
    assert len(retriever.hit_images(found)) == 4  # its rows lead to the pictures
    assert retriever.video_frames(identity, "no such video").empty


def test_frame_ids_are_every_indexed_id_ascending(built, retriever: Retriever) -> None:
    *_, ids = built
    assert retriever.frame_ids().tolist() == sorted(ids.tolist())


def test_frames_give_metadata_in_the_order_asked(built, retriever: Retriever) -> None:
    *_, frames, _, ids = built
    rows = [17, 2, 9]
    found = retriever.frames(ids[rows])
    assert found["id"].tolist() == ids[rows].tolist()
    for column in ("identity", "video", "frame"):
        assert found[column].tolist() == frames.loc[rows, column].tolist()


def test_pose_codes_are_the_codes_indexed_in_the_order_asked(built, retriever: Retriever) -> None:
    *_, vectors, ids = built
    rows = [20, 0, 11]
    codes = retriever.pose_codes(ids[rows])
    assert codes.shape == (3, vectors.shape[1]) and codes.dtype == np.float32
    np.testing.assert_allclose(codes, vectors[rows], atol=1e-6)  # a flat index stores them exactly
    with pytest.raises(KeyError, match="not in the index"):
        retriever.pose_codes([int(ids.max()) + 1])
