"""`reenact_files` on real faces: the astronaut photo and the carphone clip's frames (as photos and as a short
video), with a tiny untrained checkpoint; and every kind of bad input, each a `DataError` naming the file with
nothing written."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from skimage import data

from model import reenact as reenact_module
from model.daegan import DAEGAN, relative_pose
from model.data.errors import DataError
from model.data.face_crop import Box, crop_face, crop_square
from model.data.images import read_image, write_image
from model.data.prepare import carphone_path
from model.reenact import OUTPUT_SIZE, STRIP_MIN_CELL, reenact_files, track_driving_face
from tests.conftest import decode_video
from tests.model.test_daegan import SIZE, make_model

CLIP_FRAMES = 12
CLIP_FPS = 25.0


def write_clip(path: Path, frames: list[np.ndarray], fps: float = CLIP_FPS) -> Path:
    """RGB frames as an mp4v video."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def leftovers(folder: Path) -> list[str]:
    """Hidden (temporary) files in a folder."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A stage-1 checkpoint, the astronaut and a carphone frame as photos, a 12-frame carphone clip, a blank photo."""
    root = tmp_path_factory.mktemp("inputs")
    carphone = decode_video(carphone_path())[:CLIP_FRAMES]
    make_model().save(root / "model.safetensors")
    write_image(root / "astronaut.png", data.astronaut())
    write_image(root / "carphone.jpg", carphone[0])
    write_image(root / "carphone7.png", carphone[7])
    write_image(root / "blank.png", np.full((120, 160, 3), 128, np.uint8))
    write_clip(root / "clip.mp4", carphone)
    return {p.stem: p for p in root.iterdir()}


@pytest.fixture(scope="module")
def model(files: dict[str, Path]) -> DAEGAN:
    return DAEGAN.from_checkpoint(files["model"])


def test_photo_driver_writes_a_grid(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    result = reenact_files(
        files["model"], [files["astronaut"], files["carphone7"]], files["carphone"], out, device="cpu", progress=False
    )
    grid = read_image(out)
    side = OUTPUT_SIZE  # by default crops and result are drawn larger than the model's SIZE, from the photos
    assert grid.shape == (side, 4 * side, 3) and (result.width, result.height) == (4 * side, side)
    assert (result.kind, result.renderer, result.num_frames, result.out) == ("image", "decoder", 1, out)
    sources = [crop_face(read_image(files[name]), side, source=name) for name in ("astronaut", "carphone7")]
    driving = crop_face(read_image(files["carphone"]), side, source="carphone")
    tiles = np.split(grid, 4, axis=1)  # sources | driving | result, lossless PNG
    assert np.array_equal(tiles[0], sources[0]) and np.array_equal(tiles[1], sources[1])
    assert np.array_equal(tiles[2], driving)
    expected = DAEGAN.from_checkpoint(files["model"]).reenact(sources, driving, size=side)
    assert np.array_equal(tiles[3], DAEGAN.to_images(expected.image[0]))
    assert leftovers(tmp_path) == []


def test_video_driver_writes_a_video_frame_for_frame(files: dict[str, Path], model: DAEGAN, tmp_path: Path) -> None:
    out = tmp_path / "nested" / "reenacted.mp4"
    strip = tmp_path / "nested" / "strip.png"
    result = reenact_files(
        model, [files["astronaut"]], files["clip"], out, progress=False, strip=strip, strip_columns=3, size=SIZE
    )
    assert (result.kind, result.num_frames, result.filled, result.renderer) == ("video", CLIP_FRAMES, 0, "decoder")
    assert result.strip == strip
    capture = cv2.VideoCapture(str(out))
    assert capture.isOpened() and capture.get(cv2.CAP_PROP_FPS) == pytest.approx(CLIP_FPS)
    capture.release()
    frames = decode_video(out)
    assert len(frames) == CLIP_FRAMES and frames[0].shape == (SIZE, 2 * SIZE, 3)
    # the left half is the driving face cropped where the tracker put it (mp4 is lossy: compare loosely)
    squares = track_driving_face(files["clip"]).squares
    driving = decode_video(files["clip"])
    for frame, img, square in zip(frames, driving, squares, strict=True):
        crop = crop_square(img, square, SIZE).astype(float)
        assert np.abs(frame[:, :SIZE].astype(float) - crop).mean() < 12
    # the right half follows the driver: frames with different poses give different results
    source = crop_face(data.astronaut(), SIZE, source="astronaut")
    poses = model.encode_pose([crop_square(img, sq, SIZE) for img, sq in zip(driving, squares)], normalize=False)
    rendered = DAEGAN.to_images(model.draw([source], poses, size=SIZE)).astype(float)  # over the source
    assert np.abs(np.stack(frames)[:, :, SIZE:].astype(float) - rendered).mean() < 12
    # the strip: the first, middle and last frames (lossless PNG), driving crops above, results below
    factor = -(-STRIP_MIN_CELL // SIZE)  # enlarged by a whole factor to at least STRIP_MIN_CELL pixels
    picture = read_image(strip)[::factor, ::factor]
    assert picture.shape == (2 * SIZE, 3 * SIZE, 3)
    for column, i in enumerate((0, (CLIP_FRAMES - 1) // 2 + 1, CLIP_FRAMES - 1)):  # linspace(0, 11, 3) rounds 5.5 up
        tile = picture[:, column * SIZE : (column + 1) * SIZE].astype(float)
        assert np.array_equal(tile[:SIZE], crop_square(driving[i], squares[i], SIZE))
        assert np.abs(tile[SIZE:] - rendered[i]).max() <= 2  # rendered in other batches: float rounding only
    assert sorted(p.name for p in out.parent.iterdir()) == ["reenacted.mp4", "strip.png"]


def test_relative_motion_draws_the_drivers_motion_on_the_sources_mean_code(
    files: dict[str, Path], model: DAEGAN, tmp_path: Path
) -> None:
    # each frame's code minus the whole driving video's mean code, plus the source's mean code (`relative_pose`)
    out = tmp_path / "relative.mp4"
    result = reenact_files(
        model, [files["astronaut"]], files["clip"], out, progress=False, size=SIZE, motion="relative"
    )
    assert (result.kind, result.num_frames) == ("video", CLIP_FRAMES)
    frames = decode_video(out)
    squares, driving = track_driving_face(files["clip"]).squares, decode_video(files["clip"])
    source = crop_face(data.astronaut(), SIZE, source="astronaut")
    poses = model.encode_pose([crop_square(img, sq, SIZE) for img, sq in zip(driving, squares)], normalize=False)
    relative = relative_pose(poses, poses.mean(dim=0), model.encode_pose([source], normalize=False)[0])
    assert torch.allclose(relative.mean(dim=0), model.encode_pose([source], normalize=False)[0], atol=1e-5)
    assert torch.allclose(relative[1:] - relative[:-1], poses[1:] - poses[:-1], atol=1e-5)  # the driver's motion
    rendered = DAEGAN.to_images(model.draw([source], relative, size=SIZE)).astype(float)
    absolute = DAEGAN.to_images(model.draw([source], poses, size=SIZE)).astype(float)
    got = np.stack(frames)[:, :, SIZE:].astype(float)
    assert np.abs(got - rendered).mean() < 12 and np.abs(got - rendered).mean() < np.abs(got - absolute).mean()
    # the same through the library call on frames: a driving video's mean given, or these frames' own
    crops = [crop_square(img, sq, SIZE) for img, sq in zip(driving, squares)]
    assert torch.equal(
        model.reenact([source], crops, motion="relative").pose_code,
        model.reenact([source], crops, motion="relative", driving_mean=poses.mean(dim=0)).pose_code,
    )
    # a photo has no motion to follow
    with pytest.raises(ValueError, match="relative motion follows a driving video"):
        reenact_files(model, [files["astronaut"]], files["carphone"], tmp_path / "x.png", motion="relative")
    assert not (tmp_path / "x.png").exists()


def test_lost_face_frames_take_the_nearest_box(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    calls = iter(range(1000))
    box = Box(60.0, 30.0, 50.0, 60.0)
    monkeypatch.setattr(reenact_module, "detect_faces", lambda img: [box] if next(calls) >= 5 else [])
    track = track_driving_face(files["clip"])
    assert track.fps == pytest.approx(CLIP_FPS) and len(track.squares) == CLIP_FRAMES and track.filled == 5
    assert track.schedule == list(range(CLIP_FRAMES))  # a constant rate: every frame once
    assert track.squares[0] == track.squares[5]  # the first five frames have no face before the track starts


def test_failure_mid_video_keeps_the_old_output(
    files: dict[str, Path], model: DAEGAN, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")

    def broken(*args: object, **kwargs: object) -> torch.Tensor:
        raise KeyboardInterrupt  # Ctrl-C while frames are being written

    monkeypatch.setattr(model, "draw", broken)
    with pytest.raises(KeyboardInterrupt):
        reenact_files(model, [files["astronaut"]], files["clip"], out, progress=False)
    assert out.read_bytes() == b"previous result" and leftovers(tmp_path) == []


def _bad_inputs(files: dict[str, Path], tmp: Path) -> dict[str, tuple[list[Path], Path, Path, Path, str]]:
    """Per case: (sources, driving, checkpoint, the path the error must name, what it must say)."""
    corrupt = tmp / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    text = tmp / "notes.png"
    text.write_text("hello")
    garbage_video = tmp / "garbage.mp4"
    garbage_video.write_bytes(b"\x00\x01 not a video" * 50)
    faceless_video = write_clip(tmp / "faceless.mp4", [np.full((96, 96, 3), 40 * i, np.uint8) for i in range(3)])
    foreign = tmp / "foreign.safetensors"
    save_file({"x": torch.zeros(1)}, foreign)
    missing = tmp / "missing.png"
    ckpt, astro, car, clip = files["model"], files["astronaut"], files["carphone"], files["clip"]
    return {
        "missing-source": ([missing], car, ckpt, missing, "no such file"),
        "corrupt-source": ([astro, corrupt], car, ckpt, corrupt, "corrupt|not an image"),
        "non-image-source": ([text], car, ckpt, text, "not an image"),
        "faceless-source": ([files["blank"]], car, ckpt, files["blank"], "no face found"),
        "missing-driving": ([astro], missing, ckpt, missing, "no such file"),
        "faceless-driving": ([astro], files["blank"], ckpt, files["blank"], "no face found"),
        "corrupt-driving-video": ([astro], garbage_video, ckpt, garbage_video, "cannot open"),
        "faceless-driving-video": ([astro], faceless_video, ckpt, faceless_video, "no face found in any"),
        "missing-driving-video": ([astro], tmp / "gone.mp4", ckpt, tmp / "gone.mp4", "no such file"),
        "foreign-checkpoint": ([astro], car, foreign, foreign, "not a posedex checkpoint"),
        "missing-checkpoint": ([astro], car, tmp / "none.safetensors", tmp / "none.safetensors", "no such"),
        "source-video-as-photo": ([clip], car, ckpt, clip, "not an image"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing-source",
        "corrupt-source",
        "non-image-source",
        "faceless-source",
        "missing-driving",
        "faceless-driving",
        "corrupt-driving-video",
        "faceless-driving-video",
        "missing-driving-video",
        "foreign-checkpoint",
        "missing-checkpoint",
        "source-video-as-photo",
    ],
)
def test_bad_input_names_the_file_and_writes_nothing(files: dict[str, Path], tmp_path: Path, case: str) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    sources, driving, checkpoint, culprit, reason = _bad_inputs(files, inputs)[case]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / ("result.mp4" if driving.suffix == ".mp4" else "result.png")
    with pytest.raises(DataError, match=reason) as err:
        reenact_files(checkpoint, sources, driving, out, device="cpu", progress=False)
    assert err.value.path == culprit
    assert list(out_dir.iterdir()) == []


def test_a_strip_needs_a_video_driver_and_a_picture_name(files: dict[str, Path], tmp_path: Path) -> None:
    cases = [("carphone", "grid.png", "strip.png", "a photo driver"), ("clip", "out.mp4", "strip.mp4", "a picture")]
    for driving, out_name, strip_name, reason in cases:
        out, strip = tmp_path / out_name, tmp_path / strip_name
        with pytest.raises(DataError, match=reason) as err:
            reenact_files(files["model"], [files["astronaut"]], files[driving], out, progress=False, strip=strip)
        assert err.value.path == strip and not out.exists() and not strip.exists()


@pytest.mark.parametrize("driving, out_name", [("clip", "result.png"), ("carphone", "result.mp4")])
def test_output_suffix_must_fit_the_driver(files: dict[str, Path], tmp_path: Path, driving: str, out_name: str) -> None:
    out = tmp_path / out_name
    with pytest.raises(DataError, match="output of a") as err:
        reenact_files(files["model"], [files["astronaut"]], files[driving], out, progress=False)
    assert err.value.path == out and not out.exists()
