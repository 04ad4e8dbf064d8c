"""The frame-collection reader on trees in each layout users have on disk."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from model.data.collection import load_frame, read_collection, scan_collection
from model.data.errors import DataError
from model.data.video import video_frame_indices
from tests.conftest import write_frame, write_video


def test_frames_layout_with_labels(frames_tree: Path) -> None:
    frames = read_collection(frames_tree)
    assert list(frames.columns[:6]) == ["identity", "video", "frame", "time", "path", "layout"]
    assert len(frames) == 24 and frames["identity"].nunique() == 3
    assert set(frames["layout"]) == {"frames"}
    row = frames[(frames.identity == "p1") & (frames.video == "v0") & (frames.frame == 2)].iloc[0]
    assert row["yaw"] == 5.0 and math.isclose(row["time"], 2 / 25)
    assert Path(row["path"]).is_absolute()
    assert load_frame(row["path"])[0, 0, 0] == 10 * 1 + 2


def test_voxceleb1_crops_map_names_to_ids(vox_crops_tree: Path) -> None:
    frames = read_collection(vox_crops_tree)  # vox1_meta.csv found beside the root
    assert sorted(frames["identity"].unique()) == ["id10001", "id10275", "id10900"]
    # trailing space in the table and trailing dot on disk both still match
    assert set(frames.loc[frames.identity == "id10900", "name"]) == {"Robert_Downey_Jr."}
    assert sorted(frames["frame"].unique()) == [375, 400]
    assert np.allclose(sorted(frames["time"].unique()), [375 / 25, 16.0])
    assert set(frames["layout"]) == {"voxceleb1-crops"}


def test_voxceleb1_crops_without_meta_keep_names(vox_crops_tree: Path) -> None:
    (vox_crops_tree.parent / "vox1_meta.csv").unlink()
    frames = read_collection(vox_crops_tree)
    assert "Eartha_Kitt" in set(frames["identity"]) and "name" not in frames.columns


def test_meta_missing_an_identity_is_an_error(vox_crops_tree: Path) -> None:
    meta = vox_crops_tree.parent / "vox1_meta.csv"
    meta.write_text("\n".join(meta.read_text().splitlines()[:2]) + "\n")
    with pytest.raises(DataError, match="no VoxCeleb1 id for 2 identities") as err:
        read_collection(vox_crops_tree)
    assert err.value.path == meta


def test_video_layout_sampled_at_fps(video_tree: Path) -> None:
    frames = read_collection(video_tree, fps=5)
    clip = frames[frames.video == "1zcIwhmdeo4_00001"]
    assert clip["frame"].tolist() == [0, 6, 12, 18, 24]  # 30 fps clip, one frame per 1/5 s
    assert np.allclose(clip["time"], [0, 0.2, 0.4, 0.6, 0.8])
    assert set(frames["video"]) == {"1zcIwhmdeo4_00001", "1zcIwhmdeo4_00002", "7w0IBEWc9Qw_00001"}
    assert len(read_collection(video_tree, fps=0)) == 30 + 15 + 30
    decoded = load_frame(clip.iloc[2]["path"], 12)
    assert abs(float(decoded.mean()) - 48) < 6  # frame 12 was written with grey level 4*12


def test_unreadable_videos_are_skipped_and_listed(video_tree: Path) -> None:
    (video_tree / "id10001" / "1zcIwhmdeo4" / "00003.mp4").write_bytes(b"")
    (video_tree / "id10001" / "1zcIwhmdeo4" / "00004.mp4").write_text("not a video")
    scan = scan_collection(video_tree, fps=1)
    reasons = {path.name: reason for path, reason in scan.skipped}
    assert reasons == {
        "00003.mp4": "empty video file (0 bytes)",
        "00004.mp4": "OpenCV cannot open this video (not a video, or corrupt)",
    }
    assert scan.frames["video"].nunique() == 3


def test_hidden_folders_are_ignored(frames_tree: Path) -> None:
    write_frame(frames_tree / "p0" / ".v9.partial" / "00000.png", 1)
    write_frame(frames_tree / ".tmp" / "v0" / "00000.png", 1)
    assert len(read_collection(frames_tree)) == 24


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda root: None, "no frames found"),
        (lambda root: write_frame(root / "loose.png", 1), "no frames found"),
        (lambda root: write_frame(root / "a" / "b" / "c" / "d" / "e.png", 1), "no frames found"),
        (
            lambda root: (root / "a" / "b").mkdir(parents=True) or (root / "a" / "b" / "x.mp4").write_bytes(b""),
            "no readable frames found",
        ),
    ],
    ids=["empty", "too-shallow", "too-deep", "only-bad-videos"],
)
def test_roots_that_match_no_layout(tmp_path: Path, make, reason: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    make(root)
    with pytest.raises(DataError, match=reason) as err:
        read_collection(root)
    assert err.value.path == root and "expected <identity>/<video>/<frame>" in str(err.value)


def test_missing_root_and_file_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such folder"):
        read_collection(tmp_path / "nope")
    file = write_frame(tmp_path / "x.png", 1)
    with pytest.raises(DataError, match="not a folder"):
        read_collection(file)


def test_frame_name_without_number(tmp_path: Path) -> None:
    bad = write_frame(tmp_path / "root" / "p" / "v" / "cover.png", 1)
    with pytest.raises(DataError, match="no frame number") as err:
        read_collection(tmp_path / "root")
    assert err.value.path == bad


@pytest.mark.parametrize(
    "text, reason",
    [
        ("who,what\np0,1\n", "missing identity, video, frame"),
        ("identity,video,frame\np0,v0,0\np0,v0,0\n", "more than one row"),
        ("identity,video,frame,path\np0,v0,0,x\n", "clash"),
    ],
)
def test_bad_labels(frames_tree: Path, text: str, reason: str) -> None:
    (frames_tree / "labels.csv").write_text(text)
    with pytest.raises(DataError, match=reason) as err:
        read_collection(frames_tree)
    assert err.value.path == frames_tree / "labels.csv"


def test_video_frame_indices() -> None:
    assert video_frame_indices(10, 25.0, 0) == list(range(10))
    assert video_frame_indices(100, 25.0, 1) == [0, 25, 50, 75]
    assert video_frame_indices(5, 25.0, 50) == list(range(5))  # asking for more than there is takes every frame


def test_load_frame_past_the_end_of_a_video(tmp_path: Path) -> None:
    video = write_video(tmp_path / "a" / "b" / "c.mp4", 3)
    with pytest.raises(DataError, match="cannot decode frame 7"):
        load_frame(video, 7)


def test_a_video_folders_times_csv_gives_its_frames_times(tmp_path: Path) -> None:
    """`daegan prepare` writes times.csv beside the frames; a broken one is listed and its frames have no time."""
    root = tmp_path / "frames"
    for video in ("v0", "v1", "v2"):
        for f in range(3):
            write_frame(root / "p0" / video / f"{f:05d}.png", f)
    (root / "p0" / "v0" / "times.csv").write_text("frame,time\n0,0.0\n1,0.04\n2,0.5\n")
    (root / "p0" / "v1" / "times.csv").write_text("not,a,times,file\n1,2\n")
    scan = scan_collection(root)
    times = scan.frames.set_index(["video", "frame"])["time"]
    assert [times["v0", f] for f in range(3)] == [0.0, 0.04, 0.5]
    assert times["v1"].isna().all() and times["v2"].isna().all()  # broken, and none
    assert [(p.name, reason) for p, reason in scan.skipped] == [("times.csv", "cannot read frame times (KeyError)")]
