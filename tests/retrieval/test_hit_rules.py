"""Diverse hits (issue 16): on an index whose top hits are all one video, the caps per video, per identity and per
moment, and the identity filters, through `Retriever.search` and `index query`."""

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
from retrieval.search import Retriever
from tests.retrieval.conftest import save_tiny_model
from tests.test_bad_faces import face
from ui.index_command import main

# identity, video, frames: one talking video (a0/v0) holds the 12 frames nearest the query, then a second video of
# the same person, then two other people
VIDEOS = [("a0", "v0", 12), ("a0", "v1", 4), ("b1", "v0", 4), ("c2", "v0", 4)]
FPS = 5.0  # frames of one video are 0.2 s apart


@pytest.fixture(scope="module")
def one_video_on_top(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """An index of crafted codes: rank follows the table above, best first. Returns (index, checkpoint, query)."""
    tmp = tmp_path_factory.mktemp("hit_rules")
    checkpoint = save_tiny_model(tmp / "tiny.safetensors", seed=0)
    dim = load_config("tiny").model.pose_dim
    query = np.zeros(dim, np.float32)
    query[0] = 1.0
    rows, vectors = [], []
    for identity, video, count in VIDEOS:
        for frame in range(count):
            rows.append(
                {
                    "path": f"{identity}/{video}/{frame:05d}.png",
                    "identity": identity,
                    "video": video,
                    "frame": frame,
                    "time_s": frame / FPS,
                }
            )
            angle = 0.01 * len(vectors)  # each code a little further from the query than the last
            vector = np.zeros(dim, np.float32)
            vector[0], vector[1] = np.cos(angle), np.sin(angle)
            vectors.append(vector)
    with Store.create(tmp / "index", dim=dim, checkpoint_sha256=file_sha256(checkpoint)) as store:
        store.add(pd.DataFrame(rows), np.stack(vectors), roots={"": tmp})
    return tmp / "index", checkpoint, query


def hits(index: Path, checkpoint: Path, query: np.ndarray, k: int = 10, **rules: object) -> list[tuple[str, str, int]]:
    with Retriever(index, checkpoint, device="cpu") as retriever:
        table = retriever.search(query, k, rules=HitRules(**rules))
    assert table["score"].is_monotonic_decreasing and table["rank"].tolist() == list(range(1, len(table) + 1))
    return list(zip(table["identity"], table["video"], table["frame"]))


def test_unfiltered_the_top_ten_are_one_moment_of_one_video(one_video_on_top) -> None:
    assert hits(*one_video_on_top) == [("a0", "v0", f) for f in range(10)]


def test_per_video_gives_other_videos(one_video_on_top) -> None:
    assert hits(*one_video_on_top, k=4, per_video=1) == [
        ("a0", "v0", 0),
        ("a0", "v1", 0),
        ("b1", "v0", 0),
        ("c2", "v0", 0),
    ]
    found = hits(*one_video_on_top, per_video=2)
    assert found[:2] == [("a0", "v0", 0), ("a0", "v0", 1)] and len(found) == 8  # 4 videos x 2


def test_per_identity_gives_other_people(one_video_on_top) -> None:
    assert [h[0] for h in hits(*one_video_on_top, per_identity=1)] == ["a0", "b1", "c2"]  # fewer than k: all there is


def test_moment_collapses_near_duplicate_frames(one_video_on_top) -> None:
    """Frames 0.2 s apart; a 0.5-s moment keeps one frame in three of each video (0, 0.6, 1.2, ... s)."""
    found = hits(*one_video_on_top, moment_s=0.5)
    assert found == [("a0", "v0", f) for f in (0, 3, 6, 9)] + [
        ("a0", "v1", 0),
        ("a0", "v1", 3),
        ("b1", "v0", 0),
        ("b1", "v0", 3),
        ("c2", "v0", 0),
        ("c2", "v0", 3),
    ]


def test_identity_filters(one_video_on_top) -> None:
    assert {h[0] for h in hits(*one_video_on_top, exclude={"a0"})} == {"b1", "c2"}
    assert {h[0] for h in hits(*one_video_on_top, only={"c2"})} == {"c2"}
    assert hits(*one_video_on_top, only={"c2"}, exclude={"c2"}) == []  # exclude wins


def test_rules_are_checked() -> None:
    for bad in ({"per_video": 0}, {"per_identity": -1}, {"moment_s": -0.1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            HitRules(**bad)
    assert HitRules().allows_all and not HitRules(per_video=1).allows_all


def test_index_query_per_video_and_per_identity(one_video_on_top, tmp_path: Path) -> None:
    index, checkpoint, _ = one_video_on_top
    photo = tmp_path / "photo.png"  # a face the detector finds; the tiny model's code of it ranks the codes somehow
    Image.fromarray(face(0, 128)).save(photo)
    runner = CliRunner()
    args = ["query", str(photo), "--index", str(index), "--checkpoint", str(checkpoint), "--json", "--device", "cpu"]
    result = runner.invoke(main, [*args, "-k", "4", "--per-video", "1"])
    assert result.exit_code == 0, result.output
    videos = [(h["identity"], h["video"]) for h in json.loads(result.stdout)]
    assert len(videos) == 4 and len(set(videos)) == 4
    result = runner.invoke(main, [*args, "--per-identity", "2", "--exclude", "b1"])
    people = [h["identity"] for h in json.loads(result.stdout)]
    assert sorted(people) == ["a0", "a0", "c2", "c2"]
    result = runner.invoke(main, [*args, "--per-video", "0"])
    assert result.exit_code == 2 and "--per-video" in result.stderr
