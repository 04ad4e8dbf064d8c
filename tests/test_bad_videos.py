"""Bad videos, run as a user runs them through `daegan prepare` (a folder of videos, and one video) and `daegan
reenact --driving video.mp4`: a truncated mp4, a zero-byte file, a video of zero frames, a video stored sideways
with a rotation flag, and videos whose frame rate varies. Each gets a correct answer, or one line naming the file and
exit code 2 with nothing written (issue 14, "videos"). The videos are written in tmp_path with OpenCV's VideoWriter
and patched by `tests.video_corpus` (VideoWriter writes neither a display matrix nor varying frame durations)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from model.cli import main as daegan_main
from model.config import load_config
from model.daegan import DAEGAN
from model.data.collection import load_frame, scan_collection
from model.data.video import frame_times
from tests.test_bad_faces import face
from tests.video_corpus import media_timescale, set_display_matrix, set_frame_durations, write_mp4

NUM_FRAMES = 12


def talking(num_frames: int = NUM_FRAMES) -> list[np.ndarray]:
    """A SynthVox face sliding a pixel per frame: `(128, 128, 3)` frames the detector finds a face in."""
    return [np.roll(face(0, 128), i, axis=1) for i in range(num_frames)]


def rotated(path: Path) -> Path:
    """The talking face stored turned a quarter anticlockwise, with the display matrix that turns it back."""
    write_mp4(path, [np.ascontiguousarray(np.rot90(img, 1)) for img in talking()])
    return set_display_matrix(path, (0, 0x10000, 0, -0x10000, 0, 0, 128 << 16, 0, 0x40000000))


VFR_TIMES = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.9, 1.2, 1.5, 1.8, 2.1]  # 6 frames of 0.1 s, then 6 of 0.3 s


def variable_rate(path: Path, *, whole: bool = True) -> Path:
    """The talking face with 6 frames of 0.1 s, then 6 of 0.3 s (OpenCV states 5 fps: 12 frames in 2.4 s).

    `whole`: the header's durations agree with the frame table, as a muxer writes them, and OpenCV decodes all 12
    frames; otherwise only the ``stts`` table changes and OpenCV stops after 8 frames (0-0.6 s, then 0.9 s).
    """
    write_mp4(path, talking())
    tick = media_timescale(path) // 10
    return set_frame_durations(path, [tick] * 6 + [3 * tick] * 6, whole=whole)


def truncated(path: Path) -> Path:
    good = write_mp4(path.with_name("whole.mp4"), talking()).read_bytes()
    path.write_bytes(good[: len(good) // 2])
    path.with_name("whole.mp4").unlink()
    return path


def empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def zero_frames(path: Path) -> Path:
    write_mp4(path, [])
    assert path.stat().st_size > 0  # a container header, no frames
    return path


BAD = {
    "truncated": (truncated, "OpenCV cannot open this video"),
    "empty": (empty, "empty video file (0 bytes)"),
    "zero_frames": (zero_frames, "OpenCV cannot open this video"),
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    DAEGAN.from_config(load_config("tiny")).save(path)
    return path


def prepare(source: Path, out: Path, fps: float = 0) -> Result:
    return CliRunner().invoke(
        daegan_main, ["prepare", str(source), "--out", str(out), "--fps", str(fps), "--size", "64", "--identity", "p"]
    )


def reenact(checkpoint: Path, driving: Path, out: Path) -> Result:
    source = out.parent / "source.png"
    Image.fromarray(face(0, 128)).save(source)
    return CliRunner().invoke(
        daegan_main,
        [
            "reenact",
            "--checkpoint",
            str(checkpoint),
            "--source",
            str(source),
            "--driving",
            str(driving),
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
    )


@pytest.mark.parametrize("name", BAD)
def test_a_bad_video_given_alone_to_prepare_is_one_line_and_exit_2(tmp_path, name):
    make, reason = BAD[name]
    video = make(tmp_path / f"{name}.mp4")
    result = prepare(video, tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr.startswith(f"Error: {video}: {reason}"), result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))


def test_bad_videos_in_a_folder_are_skipped_and_listed_beside_a_good_one(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name, (make, _) in BAD.items():
        make(folder / f"{name}.mp4")
    write_mp4(folder / "good.mp4", talking())
    result = CliRunner().invoke(
        daegan_main, ["prepare", str(folder), "--out", str(tmp_path / "out"), "--fps", "0", "--size", "64"]
    )
    assert result.exit_code == 0, result.output
    for name, (_, reason) in BAD.items():
        assert f"skipped: {folder / name}.mp4: {reason}" in result.stderr
        assert not (tmp_path / "out" / name).exists()
    assert len(list((tmp_path / "out" / "good" / "good").glob("*.png"))) == NUM_FRAMES
    assert not [p for p in (tmp_path / "out").rglob(".*")], "no hidden temporary folder is left"


@pytest.mark.parametrize("name", BAD)
def test_a_bad_driving_video_is_one_line_and_exit_2(checkpoint, tmp_path, name):
    make, reason = BAD[name]
    video = make(tmp_path / f"{name}.mp4")
    result = reenact(checkpoint, video, tmp_path / "out.mp4")
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr.startswith(f"Error: {video}: {reason}"), result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{name}.mp4", "source.png"]), "nothing is written"


def test_ffmpeg_adds_no_line_of_its_own_to_a_bad_video_error(tmp_path):
    """FFmpeg writes to the process's stderr, which CliRunner does not see: run the real command."""
    video = truncated(tmp_path / "truncated.mp4")
    daegan = Path(sys.executable).with_name("daegan")
    result = subprocess.run(
        [str(daegan), "prepare", str(video), "--out", str(tmp_path / "out"), "--identity", "p"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"Error: {video}: OpenCV cannot open this video (not a video, or corrupt)"]


def test_a_video_with_a_rotation_flag_is_read_upright(checkpoint, tmp_path):
    """Stored sideways, the face would not be found; OpenCV applies the flag, so every frame is prepared upright
    and reenacted."""
    video = rotated(tmp_path / "rotated.mp4")
    capture = cv2.VideoCapture(str(video))
    ok, bgr = capture.read()
    capture.release()
    assert ok and bgr.shape[:2] == (128, 128)
    result = prepare(video, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out" / "p" / "rotated").glob("*.png"))) == NUM_FRAMES
    result = reenact(checkpoint, video, tmp_path / "out.mp4")
    assert result.exit_code == 0, result.output
    assert f"{NUM_FRAMES} frames" in result.stdout


def stems(folder: Path) -> list[int]:
    return sorted(int(p.stem) for p in folder.glob("*.png"))


@pytest.mark.parametrize(("fps", "kept"), [(0, list(range(12))), (5, [0, 2, 4, 6, 7, 8, 9, 10, 11])])
def test_a_variable_rate_video_is_prepared_at_its_real_frame_times(tmp_path, fps, kept):
    """At 5 fps the first frame of each 0.2 s interval is kept, by its timestamp; numbering frames as if the rate
    held (i / 5 s) would keep all 12."""
    video = variable_rate(tmp_path / "vfr.mp4")
    assert frame_times(video) == pytest.approx(VFR_TIMES)
    result = prepare(video, tmp_path / "out", fps)
    assert result.exit_code == 0, result.output
    assert "video ends before this frame" not in result.output
    assert stems(tmp_path / "out" / "p" / "vfr") == kept
    times = [VFR_TIMES[i] for i in kept]
    assert times == pytest.approx(
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.9, 1.2, 1.5, 1.8, 2.1]
        if fps == 0
        else [0.0, 0.2, 0.4, 0.6, 0.9, 1.2, 1.5, 1.8, 2.1]
    )


def test_a_variable_rate_video_in_a_collection_is_sampled_at_its_real_frame_times(tmp_path):
    """`index build` on a video layout: at 5 fps the frames and times `prepare` keeps, each row's frame decoding
    to the frame at its time; one that loses frames is skipped and listed."""
    folder = tmp_path / "root" / "p" / "talk"
    folder.mkdir(parents=True)
    variable_rate(folder / "vfr.mp4")
    variable_rate(folder / "lossy.mp4", whole=False)
    scan = scan_collection(tmp_path / "root", fps=5)
    assert scan.frames["frame"].tolist() == [0, 2, 4, 6, 7, 8, 9, 10, 11]
    assert scan.frames["time"].tolist() == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.9, 1.2, 1.5, 1.8, 2.1])
    frames = talking()
    for index in (6, 7, 11):
        assert np.abs(load_frame(folder / "vfr.mp4", index).astype(float) - frames[index]).mean() < 5  # next: 7
    assert [(path.name, reason.split(":")[0]) for path, reason in scan.skipped] == [
        ("lossy.mp4", "variable frame rate")
    ]


def test_a_variable_rate_video_that_loses_frames_is_one_line_and_exit_2(tmp_path):
    video = variable_rate(tmp_path / "vfr.mp4", whole=False)
    result = prepare(video, tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr.startswith(
        f"Error: {video}: variable frame rate: the container lists 12 frames, OpenCV decodes 8; re-encode at a "
        "constant rate, e.g. ffmpeg"
    ), result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))


def test_variable_rate_videos_in_a_folder_beside_a_good_one(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    variable_rate(folder / "vfr.mp4")
    variable_rate(folder / "lossy.mp4", whole=False)
    write_mp4(folder / "good.mp4", talking())
    result = CliRunner().invoke(
        daegan_main, ["prepare", str(folder), "--out", str(tmp_path / "out"), "--fps", "5", "--size", "64"]
    )
    assert result.exit_code == 0, result.output
    assert f"skipped: {folder / 'lossy.mp4'}: variable frame rate" in result.stderr
    assert not (tmp_path / "out" / "lossy").exists()
    assert stems(tmp_path / "out" / "vfr" / "vfr") == [0, 2, 4, 6, 7, 8, 9, 10, 11]
    assert stems(tmp_path / "out" / "good" / "good") == [0, 2, 4, 6, 8, 10]  # 10 fps, constant: every second frame


def test_a_variable_rate_driving_video_is_resampled_to_play_in_step(checkpoint, tmp_path):
    """6 frames of 0.1 s then 6 of 0.3 s: written at the steady 10 fps, each output frame shows the driving frame
    on screen at its time (the 0.3 s frames three times each), so the result lasts as long as the driver."""
    video = variable_rate(tmp_path / "vfr.mp4")
    result = reenact(checkpoint, video, tmp_path / "out.mp4")
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout and "22 frames" in result.stdout
    capture = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(10)
    lefts = []
    while (frame := capture.read())[0]:
        lefts.append(frame[1][:, :64].astype(float))  # the driving crop: which driving frame is shown
    capture.release()
    assert len(lefts) == 22  # ticks 0, 0.1, ..., 2.1 s
    shown = [0, 1, 2, 3, 4, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9, 10, 10, 10, 11]
    for tick, frame in enumerate(shown):
        repeat = shown.index(frame)  # the first tick showing this frame
        assert np.abs(lefts[tick] - lefts[repeat]).mean() < 3, tick  # repeats of one frame (mp4 is lossy)
    assert np.abs(lefts[6] - lefts[9]).mean() > np.abs(lefts[6] - lefts[8]).mean()  # 0.6 s, then 0.9 s: new frame


def test_a_variable_rate_driving_video_that_loses_frames_is_one_line_and_exit_2(checkpoint, tmp_path):
    """OpenCV decodes 8 of 12 frames: the output would stop 1.5 s early, so it is refused, as `prepare` refuses it."""
    video = variable_rate(tmp_path / "vfr.mp4", whole=False)
    result = reenact(checkpoint, video, tmp_path / "out.mp4")
    assert result.exit_code == 2, result.output
    shown = result.stderr.split("\r")[-1]  # what a terminal shows: the progress bar (leave=False) is cleared
    assert result.stdout == "" and shown.startswith(
        f"Error: {video}: variable frame rate: the container lists 12 frames, OpenCV decodes 8; "
        "re-encode at a constant rate"
    ), result.output
    assert result.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.png", "vfr.mp4"], "nothing is written"


@pytest.fixture(scope="module")
def valid_mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_mp4(tmp_path_factory.mktemp("mp4") / "valid.mp4", talking(6)).read_bytes()


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with up to 16 bytes overwritten (half the time in the first KiB, where the boxes that describe the
    stream are), and perhaps cut short."""
    out = bytearray(data)
    edits = st.tuples(st.integers(0, min(1023, len(data) - 1)) | st.integers(0, len(data) - 1), st.integers(0, 255))
    for at, value in draw(st.lists(edits, min_size=1, max_size=16)):
        out[at] = value
    return bytes(out[: draw(st.integers(1, len(out)))] if draw(st.booleans()) else out)


def test_mutated_mp4_bytes_are_prepared_or_one_line_and_exit_2(valid_mp4: bytes, tmp_path: Path) -> None:
    """Random byte edits of a valid mp4 through `daegan prepare`: frames written, or exit 2 and one line naming the
    file; never a traceback (issue 14, "property-based")."""

    @settings(max_examples=40, deadline=None, database=None)
    @given(data=mutated(valid_mp4))
    def check(data: bytes) -> None:
        video = tmp_path / "fuzz.mp4"
        video.write_bytes(data)
        out = tmp_path / "out"
        result = prepare(video, out)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        if result.exit_code == 0:
            assert stems(out / "p" / "fuzz"), result.output
        else:
            assert result.exit_code == 2, result.output
            lines = result.stderr.split("\r")[-1].strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"Error: {video}: "), result.stderr
        shutil.rmtree(out, ignore_errors=True)

    check()
