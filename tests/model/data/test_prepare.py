"""`daegan prepare` on the real carphone clip and on video trees written in fixtures from its frames."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from model.data import prepare as prepare_module
from model.data.collection import TIMES_FILE, read_collection
from model.data.errors import DataError
from model.data.face_crop import Box, crop_square, detect_faces, face_square
from model.data.images import read_image
from model.data.prepare import (
    NO_FACE,
    carphone_path,
    follow_face,
    prepare,
    prepare_photos,
    prepare_video,
)
from tests.conftest import decode_video

CARPHONE_FPS = 30000 / 1001  # NTSC rate the clip declares
CROP = 64  # crop side for the fixture trees: small keeps them fast; the carphone test uses the demo's 128


@pytest.fixture(scope="module")
def carphone_frames() -> list[np.ndarray]:
    """The carphone clip's 120 frames, RGB."""
    return decode_video(carphone_path())


def write_clip(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """Write RGB frames as an mp4v video."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_track(path: Path, first: int, boxes: list[tuple[float, float, float, float]], fractional: bool) -> Path:
    """A face track in the annotation release's exact format (VoxCeleb1 pixels, or VoxCeleb2 fractions)."""
    lines = [
        "Identity  \t: id10001 ",
        "Reference \t: ytAAA ",
        "Offset  \t: 1 ",
        "FV Conf   \t: 16.647\t(1) ",
        "ASD Conf  \t: 4.589 ",
        "",
        "FRAME \tX \tY \tW \tH ",
    ]
    for k, box in enumerate(boxes):
        cells = [f"{v:.3f}" if fractional else f"{round(v):04d}" for v in box]
        lines.append(f"{first + k:06d} \t" + " \t".join(cells) + " ")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def sampled(num_frames: int, native_fps: float, fps: float) -> list[int]:
    """The first frame of each 1/fps interval, written out independently of the code under test."""
    slot = [math.floor(i * fps / native_fps) for i in range(num_frames)]
    return [i for i in range(num_frames) if i == 0 or slot[i] != slot[i - 1]]


def frame_names(folder: Path) -> list[str]:
    """The frame pictures of a prepared video folder (beside them: times.csv)."""
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".png")


def visible_tree(out: Path) -> list[str]:
    """Everything under `out`, hidden or not, as relative paths."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")) if out.exists() else []


# --- the real sample ------------------------------------------------------------------------------------------------


def test_carphone_crops_are_whole_centred_and_stable(tmp_path: Path) -> None:
    fps = 10.0
    report = prepare(carphone_path(), tmp_path, fps=fps, size=128, identity="carphone", progress=False)
    assert report.failures == []
    (video,) = report.videos
    assert (video.identity, video.video) == ("carphone", "carphone_pristine")
    wanted = sampled(120, CARPHONE_FPS, fps)
    assert len(wanted) == 40
    assert sorted([*video.squares, *(i for i, _ in video.skipped)]) == wanted
    assert video.written == len(video.squares) >= 0.9 * len(wanted)

    folder = tmp_path / "carphone" / "carphone_pristine"
    assert frame_names(folder) == [f"{i:07d}.png" for i in sorted(video.squares)]
    times = pd.read_csv(folder / TIMES_FILE)  # each frame's time, read back by the collection reader
    assert times["frame"].tolist() == sorted(video.squares)
    assert times["time"].tolist() == pytest.approx([i / CARPHONE_FPS for i in sorted(video.squares)], abs=1e-3)
    frames = read_collection(tmp_path)
    assert frames["time"].tolist() == pytest.approx(times["time"].tolist())
    crops = [read_image(folder / name) for name in frame_names(folder)]
    assert all(crop.shape == (128, 128, 3) for crop in crops)
    faces = [detect_faces(crop) for crop in crops]
    assert sum(bool(f) for f in faces) >= 0.9 * len(crops)
    for found in filter(None, faces):  # the whole head, centred: the face box sits in the middle of the crop
        cx, cy = found[0].center
        assert abs(cx - 64) < 16 and abs(cy - 72) < 20, found[0]

    squares = [video.squares[i] for i in sorted(video.squares)]
    centres = np.array([s.center for s in squares])  # (frames, 2)
    sides = np.array([s.w for s in squares])
    assert (np.abs(np.diff(centres, axis=0)).max(axis=0) < 0.08 * sides.mean()).all()  # 1/10 s apart
    assert sides.max() / sides.min() < 1.15  # no zooming in and out


# --- naming and sampling --------------------------------------------------------------------------------------------


def test_voxceleb_video_layout_names_and_sampling(tmp_path: Path, carphone_frames: list[np.ndarray]) -> None:
    root = tmp_path / "videos"
    write_clip(root / "id10001" / "ytAAA" / "00001.mp4", carphone_frames[:30], 30.0)
    write_clip(root / "id10001" / "ytAAA" / "00002.mp4", carphone_frames[30:60], 30.0)
    write_clip(root / "id10002" / "ytBBB" / "00001.mp4", carphone_frames[60:90], 30.0)
    out = tmp_path / "frames"
    report = prepare(root, out, fps=5, size=CROP, progress=False)
    assert report.failures == []
    folders = ["id10001/ytAAA_00001", "id10001/ytAAA_00002", "id10002/ytBBB_00001"]
    assert sorted(f"{v.identity}/{v.video}" for v in report.videos) == folders
    assert all(v.skipped == [] for v in report.videos)
    frames = [f"{i:07d}.png" for i in (0, 6, 12, 18, 24)]  # 30 fps sampled at 5 fps
    expected = [
        "id10001",
        "id10002",
        *folders,
        *(f"{folder}/{name}" for folder in folders for name in [*frames, TIMES_FILE]),
    ]
    assert visible_tree(out) == sorted(expected)  # nothing else, hidden or not


def test_flat_folder_names_by_stem_and_reports_bad_videos(
    tmp_path: Path, carphone_frames: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "videos"
    write_clip(root / "alice.mp4", carphone_frames[:6], 25.0)
    write_clip(root / "bob.avi", carphone_frames[6:12], 25.0)
    write_clip(root / "carol.mp4", carphone_frames[12:18], 25.0)
    (root / "notes.mp4").write_text("not a video\n")
    (root / ".hidden.mp4").write_text("ignored: hidden\n")
    real_write = prepare_module.write_image

    def write_failing_for_carol(path: Path, img: np.ndarray) -> None:
        if "carol" in str(path):
            raise RuntimeError("disk hiccup")
        real_write(path, img)

    monkeypatch.setattr(prepare_module, "write_image", write_failing_for_carol)
    out = tmp_path / "frames"
    report = prepare(root, out, fps=0, size=CROP, progress=False)
    assert sorted((v.identity, v.video, v.written) for v in report.videos) == [("alice", "alice", 6), ("bob", "bob", 6)]
    assert sorted(f"skipped: {err}" for err in report.failures) == [
        f"skipped: {root / 'carol.mp4'}: RuntimeError: disk hiccup",
        f"skipped: {root / 'notes.mp4'}: OpenCV cannot open this video (not a video, or corrupt)",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["alice", "bob"]


def test_identity_argument_and_single_file_naming(tmp_path: Path, carphone_frames: list[np.ndarray]) -> None:
    clip = write_clip(tmp_path / "in" / "talk.mp4", carphone_frames[:4], 25.0)
    (by_stem,) = prepare(clip, tmp_path / "a", fps=0, size=CROP, progress=False).videos
    assert (by_stem.identity, by_stem.video) == ("talk", "talk")
    (named,) = prepare(tmp_path / "in", tmp_path / "b", fps=0, size=CROP, identity="me", progress=False).videos
    assert (named.identity, named.video) == ("me", "talk")
    assert frame_names(tmp_path / "b" / "me" / "talk") == [f"{i:07d}.png" for i in range(4)]


# --- photos ---------------------------------------------------------------------------------------------------------


def test_photos_of_one_person_make_one_video(tmp_path: Path, carphone_frames: list[np.ndarray]) -> None:
    blank = np.full_like(carphone_frames[0], 90)
    photos = [(1, carphone_frames[0]), (2, blank), (3, carphone_frames[60])]
    video = prepare_photos(photos, tmp_path, identity="me", video_name="photos", size=CROP, source=tmp_path / "in")
    assert (video.identity, video.video, video.written, video.skipped) == ("me", "photos", 2, [(2, NO_FACE)])
    assert visible_tree(tmp_path / "me") == ["photos", "photos/0000001.png", "photos/0000003.png"]
    for number, frame in (1, carphone_frames[0]), (3, carphone_frames[60]):  # each photo's own face, untracked
        expected = crop_square(frame, face_square(detect_faces(frame)[0]), CROP)
        np.testing.assert_array_equal(read_image(tmp_path / "me" / "photos" / f"{number:07d}.png"), expected)


def test_photos_without_a_face_are_a_data_error(tmp_path: Path) -> None:
    blank = np.full((112, 92, 3), 90, np.uint8)
    with pytest.raises(DataError) as err:
        prepare_photos(
            [(1, blank), (2, blank)],
            tmp_path / "out",
            identity="me",
            video_name="photos",
            size=CROP,
            source=tmp_path / "in",
        )
    assert str(err.value) == f"{tmp_path / 'in'}: {NO_FACE} in any of the 2 photos"
    assert visible_tree(tmp_path / "out") == []


# --- face tracks ----------------------------------------------------------------------------------------------------


@pytest.fixture
def no_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any use of the detector fail: crops must come from the track."""

    def refuse(img: np.ndarray) -> list[Box]:
        raise AssertionError("the detector ran although a face track was given")

    monkeypatch.setattr(prepare_module, "detect_faces", refuse)


@pytest.mark.usefixtures("no_detector")
@pytest.mark.parametrize("clip_fps", [25.0, 50.0])
def test_voxceleb1_tracks_place_the_crops(tmp_path: Path, carphone_frames: list[np.ndarray], clip_fps: float) -> None:
    root, tracks = tmp_path / "videos", tmp_path / "txt"
    clip = write_clip(root / "id10001" / "ytAAA" / "00001.mp4", carphone_frames[:8], clip_fps)
    # A distinctive box per track row, far from the detector's answer: it moves 4 px right per 25 fps frame.
    boxes = [(10 + 4 * k, 20, 40, 40) for k in range(8)]
    write_track(tracks / "id10001" / "ytAAA" / "00001.txt", 375, boxes, fractional=False)
    write_clip(root / "id10001" / "ytAAA" / "00002.mp4", carphone_frames[:2], clip_fps)  # its track is missing
    out = tmp_path / "frames"
    report = prepare(root, out, fps=0, size=CROP, tracks=tracks, progress=False)
    missing, untracked = tracks / "id10001" / "ytAAA" / "00002.txt", root / "id10001" / "ytAAA" / "00002.mp4"
    assert [str(err) for err in report.failures] == [f"{missing}: no such face track (for {untracked})"]
    folder = out / "id10001" / "ytAAA_00001"
    assert frame_names(folder) == [f"{i:07d}.png" for i in range(8)]  # numbered by the mp4, not the track
    step = 25.0 / clip_fps  # track rows per mp4 frame
    for i, frame in enumerate(decode_video(clip)):
        expected = crop_square(frame, face_square(Box(*boxes[math.floor(i * step)])), CROP)
        np.testing.assert_array_equal(read_image(folder / f"{i:07d}.png"), expected)


@pytest.mark.usefixtures("no_detector")
def test_voxceleb2_fractional_track(tmp_path: Path, carphone_frames: list[np.ndarray]) -> None:
    clip = write_clip(tmp_path / "00001.mp4", carphone_frames[:3], 25.0)
    track = write_track(tmp_path / "00001.txt", 61, [(0.1, 0.2, 0.3, 0.35)] * 2, fractional=True)
    out = tmp_path / "out"
    video = prepare_video(clip, out, identity="id00012", video_name="v", fps=0, size=CROP, track=track, progress=False)
    assert video.written == 2
    assert video.skipped == [(2, "face track 00001.txt has no row for frame 63")]
    pixels = Box(0.1 * 176, 0.2 * 144, 0.3 * 176, 0.35 * 144)  # the clip is 176×144
    for i, frame in enumerate(decode_video(clip)[:2]):
        written = read_image(out / "id00012" / "v" / f"{i:07d}.png")
        np.testing.assert_array_equal(written, crop_square(frame, face_square(pixels), CROP))


# --- bad input: one clear DataError each, nothing written -----------------------------------------------------------


def zero_byte_video(tmp: Path) -> Path:
    (path := tmp / "empty.mp4").write_bytes(b"")
    return path


def text_renamed_mp4(tmp: Path) -> Path:
    (path := tmp / "text.mp4").write_text("hello\n")
    return path


def missing_path(tmp: Path) -> Path:
    return tmp / "missing.mp4"


def empty_folder(tmp: Path) -> Path:
    (path := tmp / "empty_dir").mkdir()
    return path


def folder_without_videos(tmp: Path) -> Path:
    (path := tmp / "docs").mkdir()
    (path / "readme.txt").write_text("no videos here\n")
    (path / "still.png").write_bytes(b"\x89PNG")
    return path


def video_without_a_face(tmp: Path) -> Path:
    return write_clip(tmp / "grey.mp4", [np.full((96, 128, 3), 90, np.uint8)] * 5, 25.0)


BAD_INPUTS = {
    "zero-byte": (zero_byte_video, "empty video file (0 bytes)"),
    "text-as-mp4": (text_renamed_mp4, "OpenCV cannot open this video"),
    "missing": (missing_path, "no such file or folder"),
    "empty-folder": (empty_folder, "no videos found (expected .mp4/"),
    "no-videos": (folder_without_videos, "no videos found (expected .mp4/"),
    "no-face": (video_without_a_face, f"{NO_FACE} in any of the 5 sampled frames"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_data_error(tmp_path: Path, case: str) -> None:
    make, reason = BAD_INPUTS[case]
    source = make(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(DataError) as err:
        prepare(source, out, fps=0, size=CROP, progress=False)
    assert str(err.value).startswith(f"{source}: ")
    assert reason in err.value.reason
    assert visible_tree(out) == []


def test_malformed_track_is_a_data_error(tmp_path: Path, carphone_frames: list[np.ndarray]) -> None:
    clip = write_clip(tmp_path / "talk.mp4", carphone_frames[:3], 25.0)
    track = tmp_path / "talk.txt"
    track.write_text("Identity : id10001\n\n\n\n\n\nFRAME X Y\n000001 10 20\n")
    with pytest.raises(DataError) as err:
        prepare(clip, tmp_path / "out", fps=0, size=CROP, tracks=track, progress=False)
    assert err.value.path == track and "not a VoxCeleb face track" in err.value.reason
    assert visible_tree(tmp_path / "out") == []


# --- atomicity ------------------------------------------------------------------------------------------------------


def fail_after(monkeypatch: pytest.MonkeyPatch, calls: int, error: BaseException) -> None:
    """Let `calls` frames be written, then raise `error` from the next write."""
    real_write = prepare_module.write_image
    count = iter(range(calls + 1))

    def write(path: Path, img: np.ndarray) -> None:
        if next(count) == calls:
            raise error
        real_write(path, img)

    monkeypatch.setattr(prepare_module, "write_image", write)


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()], ids=["exception", "ctrl-c"])
def test_interrupted_video_leaves_nothing(
    tmp_path: Path, carphone_frames: list[np.ndarray], monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    clip = write_clip(tmp_path / "talk.mp4", carphone_frames[:8], 25.0)
    fail_after(monkeypatch, 3, error)
    with pytest.raises(type(error)):
        prepare_video(clip, tmp_path / "out", identity="me", video_name="talk", fps=0, size=CROP, progress=False)
    assert visible_tree(tmp_path / "out") == []


def test_reprepare_replaces_and_a_failed_rerun_keeps_the_old(
    tmp_path: Path, carphone_frames: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = write_clip(tmp_path / "talk.mp4", carphone_frames[:6], 25.0)
    out = tmp_path / "out"
    folder = out / "me" / "talk"
    prepare_video(clip, out, identity="me", video_name="talk", fps=0, size=CROP, progress=False)
    (folder / "stale.png").write_bytes(b"from an older run")
    prepare_video(clip, out, identity="me", video_name="talk", fps=0, size=32, progress=False)
    assert frame_names(folder) == [f"{i:07d}.png" for i in range(6)]  # the old folder is gone as a whole
    assert read_image(folder / "0000000.png").shape == (32, 32, 3)
    assert sorted(p.name for p in (out / "me").iterdir()) == ["talk"]

    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    fail_after(monkeypatch, 2, RuntimeError("boom"))
    with pytest.raises(RuntimeError):
        prepare_video(clip, out, identity="me", video_name="talk", fps=0, size=CROP, progress=False)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in (out / "me").iterdir()) == ["talk"]


def test_leftovers_of_a_killed_run_are_cleared_or_restored(
    tmp_path: Path, carphone_frames: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = write_clip(tmp_path / "talk.mp4", carphone_frames[:4], 25.0)
    parent = tmp_path / "out" / "me"
    (parent / ".talk.tmp-dead").mkdir(parents=True)  # killed while writing
    (parent / ".talk.tmp-dead" / "0000000.png").write_bytes(b"half")
    (parent / ".talk.old-dead").mkdir()  # killed between renaming the old folder away and the new one in
    (parent / ".talk.old-dead" / "0000000.png").write_bytes(b"the previous frames")
    fail_after(monkeypatch, 1, RuntimeError("boom"))
    with pytest.raises(RuntimeError):
        prepare_video(clip, tmp_path / "out", identity="me", video_name="talk", fps=0, size=CROP, progress=False)
    assert visible_tree(parent) == ["talk", "talk/0000000.png"]  # restored, and the half-written one gone
    assert (parent / "talk" / "0000000.png").read_bytes() == b"the previous frames"


# --- following one face ---------------------------------------------------------------------------------------------


def test_follow_face_interpolates_short_gaps_and_keeps_the_track() -> None:
    times = np.arange(10) * 0.1
    moving = [Box(2.0 * k, 0, 20, 20) for k in range(10)]  # 2 px right per frame
    distractor = Box(200, 200, 80, 80)  # larger, elsewhere: not the face being followed
    detections = [[distractor, moving[k]] if k else [moving[k]] for k in range(10)]
    detections[4] = detections[5] = []
    boxes = follow_face(detections, times)
    assert all(isinstance(b, Box) for b in boxes)
    for k in range(2, 8):  # the interior, where the median window is whole
        assert boxes[k].x == pytest.approx(2.0 * k) and boxes[k].w == pytest.approx(20)


def test_follow_face_skips_long_gaps_and_frames_before_the_face() -> None:
    times = np.arange(20) * 0.1
    face = Box(50, 50, 30, 30)
    detections = [[] if k < 2 or 5 <= k < 17 else [face] for k in range(20)]  # 1.3 s without a face
    boxes = follow_face(detections, times)
    assert [k for k, b in enumerate(boxes) if b == NO_FACE] == [0, 1, *range(5, 17)]
    assert all(b == face for k, b in enumerate(boxes) if k not in (0, 1, *range(5, 17)))
