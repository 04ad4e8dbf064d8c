"""SynthVox: deterministic, atomic collections with consistent labels; talking trajectories; a 3D renderer whose
faces differ per identity and that OpenCV's frontal face detector recognises."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from model.data import synthvox
from model.data.errors import DataError
from model.data.images import read_image
from model.data.synthvox import (
    FPS,
    LABEL_COLUMNS,
    PITCH_MAX,
    POSE_COLUMNS,
    ROLL_MAX,
    YAW_MAX,
    Identity,
    Pose,
    contact_sheet,
    identity_name,
    render,
    synthesize,
    talking_trajectory,
    video_name,
    video_rng,
)

TINY = dict(identities=2, videos_per_identity=2, frames=3, size=32)
MAX_YAW_STEP = 6.0  # degrees per frame at 25 fps: head motion stays below 0.5 Hz
HAAR_SIZE = 128
HAAR_MIN_RATE = 0.8


def _files(root: Path) -> dict[str, bytes]:
    """Every file under `root` by relative path, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_whatever_the_workers(tmp_path: Path) -> None:
    synthesize(tmp_path / "a", seed=3, workers=1, progress=False, **TINY)
    synthesize(tmp_path / "b", seed=3, workers=2, progress=False, **TINY)
    synthesize(tmp_path / "c", seed=4, workers=1, progress=False, **TINY)
    a, b, c = (_files(tmp_path / name) for name in "abc")
    assert len(a) == 2 * 2 * 3 + 2 and a == b  # frames, labels.csv, synthvox.json
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a)  # another seed: other faces, other poses


def test_layout_and_labels(tmp_path: Path) -> None:
    out = tmp_path / "sv"
    out.mkdir()  # an empty folder is fine: it is replaced by the collection
    labels = synthesize(out, identities=2, videos_per_identity=3, frames=4, size=32, seed=0, workers=1,
                        image_format="jpg", progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["labels.csv", "sv0000", "sv0001", "synthvox.json"]
    assert json.loads((out / "synthvox.json").read_text()) == {
        "seed": 0, "identities": 2, "videos_per_identity": 3, "frames": 4, "size": 32, "image_format": "jpg"}
    assert sorted(p.name for p in (out / "sv0001").iterdir()) == ["v00", "v01", "v02"]
    assert sorted(p.name for p in (out / "sv0001" / "v02").iterdir()) == [f"0000{i}.jpg" for i in range(4)]
    assert read_image(out / "sv0001" / "v02" / "00003.jpg").shape == (32, 32, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["sv"]  # no staging folder left behind
    table = pd.read_csv(out / "labels.csv", dtype={"identity": str, "video": str})
    assert tuple(table.columns) == LABEL_COLUMNS
    assert len(table) == 2 * 3 * 4
    assert table["frame"].dtype == np.int64 and all(table[c].dtype == np.float64 for c in ("time", *POSE_COLUMNS))
    assert np.allclose(table["time"], table["frame"] / FPS)
    keys = ["identity", "video", "frame"]
    assert table[keys].values.tolist() == labels[keys].values.tolist()
    assert (identity_name(1), video_name(2)) in set(zip(table["identity"], table["video"]))


def test_trajectories_stay_in_range_move_smoothly_and_talk() -> None:
    trajectories = [talking_trajectory(np.random.default_rng(k), 100) for k in range(40)]
    poses = np.array([[getattr(p, c) for c in POSE_COLUMNS] for t in trajectories for p in t]).reshape(40, 100, 7)
    for column, limit in zip(range(3), (YAW_MAX, PITCH_MAX, ROLL_MAX)):
        assert np.abs(poses[:, :, column]).max() <= limit
    assert poses[:, :, 3:].min() >= 0.0 and poses[:, :, 3:].max() <= 1.0
    yaw = poses[:, :, 0]
    assert np.abs(np.diff(yaw, axis=1)).max() < MAX_YAW_STEP
    assert np.abs(yaw).max() > 0.8 * YAW_MAX  # the whole range gets used
    assert (yaw.std(axis=1) > 0.5).all()  # every head moves within 4 s
    mouth = poses[:, :, 3]
    syllables = (np.diff(np.sign(np.diff(mouth, axis=1)), axis=1) < 0).sum(1)  # local maxima of the opening
    assert np.median(syllables) >= 4  # the mouth opens and closes repeatedly, at syllable rhythm
    blink = poses[:, :, 5]
    assert 0.1 < (blink.max(1) == 1.0).mean() < 1.0  # some videos blink; eyes are mostly open
    assert (blink > 0.5).mean() < 0.2


def test_identities_differ_more_than_a_small_head_turn() -> None:
    identities = [Identity.from_seed(0, i) for i in range(12)]
    frontal = [render(i, Pose(), 64).astype(float) for i in identities]
    between = min(np.abs(a - b).mean() for a, b in itertools.combinations(frontal, 2))
    within = max(np.abs(f - render(i, Pose(yaw=3.0, mouth_open=0.3), 64)).mean() for i, f in zip(identities, frontal))
    assert between > 2.0 * within
    assert len({i.hair_style for i in identities}) >= 5
    assert all(a.hair_style != b.hair_style for a, b in itertools.pairwise(identities))  # neighbours differ
    assert Identity.from_seed(0, 5) == Identity.from_seed(0, 5) != Identity.from_seed(1, 5)


def test_turning_mirrors_foreshortens_and_occludes() -> None:
    identity = Identity.from_seed(0, 1)
    right, left = render(identity, Pose(yaw=30.0, pitch=5.0), 64), render(identity, Pose(yaw=-30.0, pitch=5.0), 64)
    assert np.array_equal(right, left[:, ::-1])  # a symmetric head: mirrored pose, mirrored image
    assert np.abs(right.astype(int) - left).mean() > 5.0  # ...and not a pose-blind sprite

    def eyes(yaw: float) -> tuple[float, int, int]:
        """Distance between the two eye openings (pixels) and their areas, image-left first."""
        open_eyes = render(identity, Pose(yaw=yaw), 128).astype(int)
        closing = np.abs(open_eyes - render(identity, Pose(yaw=yaw, blink=1.0), 128)).sum(2)  # only the eyes change
        _, _, stats, centres = cv2.connectedComponentsWithStats((closing > 30).astype(np.uint8))
        a, b = sorted(1 + np.argsort(stats[1:, cv2.CC_STAT_AREA])[-2:], key=lambda j: centres[j][0])
        return centres[b][0] - centres[a][0], stats[a, cv2.CC_STAT_AREA], stats[b, cv2.CC_STAT_AREA]

    (d0, l0, r0), (d20, _, _), (d35, l35, r35) = eyes(0.0), eyes(20.0), eyes(35.0)
    assert l0 == r0
    assert d0 > d20 + 1.0 > d35 + 2.0  # the eyes draw together as the head turns
    assert r35 < 0.5 * l35  # the far eye (image right at positive yaw) foreshortens and hides behind the nose


def test_face_detector_finds_near_frontal_faces() -> None:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    found = []
    for index in range(8):
        identity = Identity.from_seed(0, index)
        for pose in talking_trajectory(video_rng(0, index, 0), 32):
            if abs(pose.yaw) < 20.0:
                grey = cv2.cvtColor(render(identity, pose, HAAR_SIZE), cv2.COLOR_RGB2GRAY)
                faces = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=3,
                                                 minSize=(HAAR_SIZE // 5, HAAR_SIZE // 5))
                found.append(len(faces) > 0)
    assert len(found) >= 60, len(found)
    assert np.mean(found) >= HAAR_MIN_RATE, np.mean(found)


def test_render_reproduces_written_frames_in_any_identity(tmp_path: Path) -> None:
    labels = synthesize(tmp_path / "sv", seed=7, workers=1, progress=False, **TINY)
    table = pd.read_csv(tmp_path / "sv" / "labels.csv", dtype={"identity": str, "video": str})
    for row in table.itertuples():
        pose = Pose(**{c: getattr(row, c) for c in POSE_COLUMNS})
        frame = read_image(tmp_path / "sv" / row.identity / row.video / f"{row.frame:05d}.png")
        assert np.array_equal(render(Identity.from_seed(7, int(row.identity[2:])), pose, 32), frame)
    assert table[list(POSE_COLUMNS)].equals(labels[list(POSE_COLUMNS)])  # the CSV holds the rendered values
    driver = table.iloc[-1]  # cross-identity ground truth: identity 0 in identity 1's pose
    target = render(Identity.from_seed(7, 0), Pose(**{c: driver[c] for c in POSE_COLUMNS}), 32)
    assert not np.array_equal(target, read_image(tmp_path / "sv" / "sv0001" / "v01" / "00002.png"))


def test_existing_collection_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "sv"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="already exists"):
        synthesize(out, seed=0, workers=1, progress=False, **TINY)
    assert _files(tmp_path) == {"sv/keep.txt": b"mine"}


def test_failure_mid_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def failing_render(identity: Identity, pose: Pose, size: int) -> np.ndarray:
        calls.append(pose)
        if len(calls) > 4:
            raise RuntimeError("renderer crashed")
        return np.zeros((size, size, 3), np.uint8)

    monkeypatch.setattr(synthvox, "render", failing_render)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        synthesize(tmp_path / "sv", seed=0, workers=1, progress=False, **TINY)
    assert list(tmp_path.iterdir()) == []


def test_interrupt_with_workers_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class InterruptedBar:
        """A progress bar whose first update is a Ctrl-C, raised while worker processes are busy."""

        def __init__(self, **kwargs: object) -> None:
            pass

        def update(self, count: int) -> None:
            raise KeyboardInterrupt

        def close(self) -> None:
            pass

    monkeypatch.setattr(synthvox, "tqdm", InterruptedBar)
    with pytest.raises(KeyboardInterrupt):
        synthesize(tmp_path / "sv", seed=0, workers=2, progress=False, **TINY)
    assert list(tmp_path.iterdir()) == []


def test_contact_sheet_places_identities_down_and_poses_across() -> None:
    identities, poses = [Identity.from_seed(0, i) for i in range(2)], [Pose(), Pose(yaw=40.0), Pose(blink=1.0)]
    sheet = contact_sheet(identities, poses, 32)
    gutter = synthvox.CONTACT_SHEET_GUTTER
    assert sheet.shape == (2 * (32 + gutter) + gutter, 3 * (32 + gutter) + gutter, 3) and sheet.dtype == np.uint8
    y, x = gutter + (32 + gutter), gutter + 2 * (32 + gutter)
    assert np.array_equal(sheet[y:y + 32, x:x + 32], render(identities[1], poses[2], 32))
