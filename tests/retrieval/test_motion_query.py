"""Query by motion (issue 16): a clip's code sequence finds the indexed segment that moves like it, by DTW, at the
indexed videos' pace, never across two videos; and `index query clip.mp4` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from indexer.store import Store
from model.checkpoint import file_sha256
from model.config import load_config
from retrieval.hit_rules import HitRules
from retrieval.motion_query import Clip, search_motion
from retrieval.search import Retriever
from tests.retrieval.conftest import save_tiny_model
from tests.retrieval.test_cli import query
from tests.test_bad_faces import face
from tests.video_corpus import write_mp4

INTERVAL = 0.5  # the indexed videos' frame interval (s)


def arc(angles: np.ndarray, dim: int) -> np.ndarray:
    """Unit codes on a circle in the first two dimensions: a smooth pose trajectory `(len(angles), dim)`."""
    codes = np.zeros((len(angles), dim), np.float32)
    codes[:, 0], codes[:, 1] = np.cos(angles), np.sin(angles)
    return codes


def turn(start: float, frames: int) -> np.ndarray:
    return start + 0.3 * np.arange(frames)  # angle of each frame: a steady turn


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Retriever, int]:
    """Three videos of 20 frames, 0.5 s apart: "a/v0" turns through angles 0 to 5.7, "b/v0" turns the other way,
    "c/v0" holds still at angle 1.5 for 20 frames."""
    tmp = tmp_path_factory.mktemp("motion")
    checkpoint = save_tiny_model(tmp / "tiny.safetensors", seed=0)
    dim = load_config("tiny").model.pose_dim
    videos = {
        ("a", "v0"): arc(turn(0.0, 20), dim),
        ("b", "v0"): arc(turn(0.0, 20)[::-1], dim),
        ("c", "v0"): arc(np.full(20, 1.5), dim),
    }
    rows = [
        {"path": f"{i}/{v}/{f:05d}.png", "identity": i, "video": v, "frame": f, "time_s": f * INTERVAL}
        for (i, v) in videos
        for f in range(20)
    ]
    with Store.create(tmp / "index", dim=dim, checkpoint_sha256=file_sha256(checkpoint)) as store:
        store.add(pd.DataFrame(rows), np.concatenate(list(videos.values())), roots={"": tmp})
    with Retriever(tmp / "index", checkpoint, device="cpu") as retriever:
        yield retriever, dim


def dense_clip(angles_at: np.ndarray, times: np.ndarray, dim: int) -> Clip:
    return Clip(np.zeros((len(times), 8, 8, 3), np.uint8), times, arc(angles_at, dim))


def test_the_turning_segment_is_found_at_the_videos_pace(indexed) -> None:
    """A 25 fps clip of the turn through frames 6-11 (angles 1.8-3.3 over 2.5 s) matches a/v0 frames 6-11, though
    the clip has 64 frames and the segment 6: the clip is sampled every 0.5 s, as the videos are."""
    retriever, dim = indexed
    times = np.arange(64) / 25  # 0 to 2.52 s
    found = search_motion(retriever, dense_clip(1.8 + 0.3 * times / INTERVAL, times, dim), k=3)
    best = found.segments.iloc[0]
    assert (best["identity"], best["video"], best["start_frame"], best["end_frame"]) == ("a", "v0", 6, 11)
    assert best["score"] == pytest.approx(1.0, abs=1e-4)
    assert len(found.frame_ids[0]) == 6 and found.segments["score"].is_monotonic_decreasing
    assert found.segments.iloc[1]["identity"] != "a" or abs(found.segments.iloc[1]["start_frame"] - 6) >= 6


def test_dtw_tolerates_a_slower_performance(indexed) -> None:
    """The same turn performed at 2/3 speed with a pause: still a/v0 around frames 6-11, far above the still video."""
    retriever, dim = indexed
    times = np.arange(100) / 25  # 4 s
    angles = 1.8 + 0.2 * np.clip(times - 0.4, 0, None) / INTERVAL  # holds 0.4 s, then turns at 2/3 of the speed
    found = search_motion(retriever, dense_clip(angles, times, dim), k=3)
    best = found.segments.iloc[0]
    assert (best["identity"], best["video"]) == ("a", "v0") and abs(best["start_frame"] - 6) <= 1
    still = found.segments[found.segments["identity"] == "c"]
    assert still.empty or still["score"].max() < best["score"] - 0.05


def test_segments_never_overlap_or_cross_videos_and_rules_apply(indexed) -> None:
    retriever, dim = indexed
    times = np.arange(50) / 25
    clip = dense_clip(1.8 + 0.3 * times / INTERVAL, times, dim)
    found = search_motion(retriever, clip, k=12)
    for (identity, video), segments in found.segments.groupby(["identity", "video"]):
        spans = sorted(zip(segments["start_frame"], segments["end_frame"]))
        assert all(end < next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))  # no overlap
        assert all(0 <= start <= end < 20 for start, end in spans)  # inside the video
    one_each = search_motion(retriever, clip, k=12, rules=HitRules(per_video=1, exclude=frozenset({"b"})))
    assert sorted(one_each.segments["identity"]) == ["a", "c"]


def test_index_query_with_a_clip_prints_segments_and_strips(runner: CliRunner, index, tmp_path: Path) -> None:
    """A real 25 fps mp4 of a face through the tiny model and the tiny SynthVox index: segments of real videos,
    as a table, as JSON, and as a picture."""
    clip = write_mp4(tmp_path / "nod.mp4", [np.roll(face(0, 128), i // 4, axis=0) for i in range(50)], fps=25)
    result = query(runner, index, str(clip), "-k", "3", "--json", "--grid", str(tmp_path / "strips.png"))
    assert result.exit_code == 0, result.output
    segments = json.loads(result.stdout)
    assert len(segments) == 3 and [s["rank"] for s in segments] == [1, 2, 3]
    assert all(s["end_frame"] > s["start_frame"] for s in segments)  # 2 s at SynthVox's 1.5 fps: 3-4 frames
    strips = np.asarray(Image.open(tmp_path / "strips.png"))
    assert strips.shape[0] > 4 * 96  # the query's row and one row per segment
    result = query(runner, index, str(clip), "--out", str(tmp_path / "x.csv"))
    assert result.exit_code == 2 and "a clip's segments print" in result.stderr
