"""SynthVox: deterministic, atomic collections with consistent labels and a versioned recipe; talking trajectories
whose pose and expression vary within videos; scenes per video, independent of identity; a 3D renderer whose faces
differ per identity and that OpenCV's frontal face detector recognises."""

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
from model.data.label_stats import MIN_WITHIN_VIDEO_SHARE, within_video_share
from model.data.synthvox import (
    LABEL_COLUMNS,
    POSE_COLUMNS,
    RECIPE_VERSION,
    Identity,
    Pose,
    Recipe,
    Scene,
    contact_sheet,
    identity_name,
    render,
    synthesize,
    talking_trajectory,
    version1_scene,
    video_name,
    video_rng,
)
from model.data.synthvox_motion import DEFAULT_FPS, PITCH_MAX, ROLL_MAX, YAW_MAX
from model.data.synthvox_render import SMILE, SMILE_V2

TINY = dict(identities=2, videos_per_identity=2, frames=3, size=32)
MAX_YAW_STEP = 6.0  # degrees per frame at 25 fps: a head turns at most 150 degrees a second
HAAR_SIZE = 128
HAAR_MIN_RATE = 0.8  # measured 0.91 (seed 0, 8 identities, near-frontal frames of their first videos)
SHARE_SEED = 2024  # a seed no constant was tuned on (tuning used 11-13 for motion, 0, 5 and 9 for detection)


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
    labels = synthesize(
        out,
        identities=2,
        videos_per_identity=3,
        frames=4,
        size=32,
        seed=0,
        fps=2.0,
        workers=1,
        image_format="jpg",
        progress=False,
    )
    assert sorted(p.name for p in out.iterdir()) == ["labels.csv", "sv0000", "sv0001", "synthvox.json"]
    assert json.loads((out / "synthvox.json").read_text()) == {
        "version": RECIPE_VERSION,
        "seed": 0,
        "fps": 2.0,
        "identities": 2,
        "videos_per_identity": 3,
        "frames": 4,
        "size": 32,
        "image_format": "jpg",
        "head_range_deg": [YAW_MAX, PITCH_MAX, ROLL_MAX],
    }
    assert Recipe.read(out / "synthvox.json") == Recipe(seed=0, fps=2.0, version=RECIPE_VERSION)
    assert sorted(p.name for p in (out / "sv0001").iterdir()) == ["v00", "v01", "v02"]
    assert sorted(p.name for p in (out / "sv0001" / "v02").iterdir()) == [f"0000{i}.jpg" for i in range(4)]
    assert read_image(out / "sv0001" / "v02" / "00003.jpg").shape == (32, 32, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["sv"]  # no staging folder left behind
    table = pd.read_csv(out / "labels.csv", dtype={"identity": str, "video": str})
    assert tuple(table.columns) == LABEL_COLUMNS
    assert len(table) == 2 * 3 * 4
    assert table["frame"].dtype == np.int64 and all(table[c].dtype == np.float64 for c in ("time", *POSE_COLUMNS))
    assert np.allclose(table["time"], table["frame"] / 2.0)
    keys = ["identity", "video", "frame"]
    assert table[keys].values.tolist() == labels[keys].values.tolist()
    assert (identity_name(1), video_name(2)) in set(zip(table["identity"], table["video"]))


def test_trajectories_stay_in_range_move_smoothly_and_talk() -> None:
    """Sampled at 25 fps for 4 s, a trajectory moves smoothly; sampled at 1 fps, the same stream is the same motion."""
    trajectories = [talking_trajectory(np.random.default_rng(k), 100, fps=25.0) for k in range(40)]
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
    assert 0.15 < (blink > 0.0).mean() < 0.35 and 0.05 < (blink == 1.0).mean() < 0.15  # a fair share mid-blink
    blinks = (np.diff((blink > 0.0).astype(int), axis=1) == 1).sum(1)  # onsets within 4 s
    assert 2 <= np.median(blinks) <= 5  # one blink a second or so (module docstring of synthvox_motion)
    sparse = talking_trajectory(np.random.default_rng(0), 4, fps=1.0)  # t = 0, 1, 2, 3 s: frames 0, 25, 50, 75
    assert np.array_equal([[getattr(p, c) for c in POSE_COLUMNS] for p in sparse], poses[0, ::25])


def test_pose_and_expression_vary_within_videos(tmp_path: Path) -> None:
    """Every parameter's within-video share of variance is at least 0.6 (0.94-0.99 on this seed), while the ranges
    are covered; a v1-like collection (1.3 s at 25 fps) falls below for most parameters."""
    labels = synthesize(
        tmp_path / "sv",
        identities=4,
        videos_per_identity=2,
        frames=20,
        size=32,
        seed=SHARE_SEED,
        workers=1,
        progress=False,
    )
    shares = within_video_share(labels, POSE_COLUMNS)
    print("within-video shares:", {c: round(s, 2) for c, s in shares.items()})
    assert min(shares.values()) >= MIN_WITHIN_VIDEO_SHARE, shares
    assert labels["yaw"].min() < -0.5 * YAW_MAX and labels["yaw"].max() > 0.5 * YAW_MAX
    assert (labels[["mouth_open", "smile", "blink", "brow_raise"]].max() > 0.8).all()
    short = pd.DataFrame(
        [
            {"identity": i, "video": v, **{c: getattr(p, c) for c in POSE_COLUMNS}}
            for i in range(4)
            for v in range(2)
            for p in talking_trajectory(video_rng(SHARE_SEED, i, v), 32, fps=25.0)
        ]
    )
    assert sum(s < MIN_WITHIN_VIDEO_SHARE for s in within_video_share(short, POSE_COLUMNS).values()) >= 4


def test_identities_differ_more_than_a_small_head_turn() -> None:
    """In one scene, so only the heads differ; compared on 4x4-pixel means (features, not edges): the closest two
    of 12 identities differ 1.7x as much as one face turned by 3 degrees with its mouth a third open."""

    def features(identity: Identity, pose: Pose) -> np.ndarray:
        return render(identity, pose, 64).astype(float).reshape(16, 4, 16, 4, 3).mean((1, 3))  # (16, 16, 3)

    identities = [Identity.from_seed(0, i) for i in range(12)]
    frontal = [features(i, Pose()) for i in identities]
    between = min(np.abs(a - b).mean() for a, b in itertools.combinations(frontal, 2))
    within = max(np.abs(f - features(i, Pose(yaw=3.0, mouth_open=0.3))).mean() for i, f in zip(identities, frontal))
    assert between > 1.4 * within
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
    """In the videos' own scenes (backdrop, light, framing), as written."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    found = []
    for index in range(8):
        identity, scene = Identity.from_seed(0, index), Scene.for_video(0, index, 0)
        for pose in talking_trajectory(video_rng(0, index, 0), 32):
            if abs(pose.yaw) < 20.0:
                grey = cv2.cvtColor(render(identity, pose, HAAR_SIZE, scene), cv2.COLOR_RGB2GRAY)
                faces = cascade.detectMultiScale(
                    grey, scaleFactor=1.1, minNeighbors=3, minSize=(HAAR_SIZE // 5, HAAR_SIZE // 5)
                )
                found.append(len(faces) > 0)
    assert len(found) >= 60, len(found)
    assert np.mean(found) >= HAAR_MIN_RATE, np.mean(found)


def test_render_reproduces_written_frames_in_any_identity(tmp_path: Path) -> None:
    labels = synthesize(tmp_path / "sv", seed=7, workers=1, progress=False, **TINY)
    table = pd.read_csv(tmp_path / "sv" / "labels.csv", dtype={"identity": str, "video": str})
    assert np.allclose(table["time"], table["frame"] / DEFAULT_FPS)
    recipe = Recipe.read(tmp_path / "sv" / "synthvox.json")
    assert recipe.trajectory(1, 0, 3) == [
        Pose(**{c: getattr(row, c) for c in POSE_COLUMNS})
        for row in table[table["identity"] == "sv0001"].iloc[:3].itertuples()
    ]
    for row in table.itertuples():
        pose = Pose(**{c: getattr(row, c) for c in POSE_COLUMNS})
        frame = read_image(tmp_path / "sv" / row.identity / row.video / f"{row.frame:05d}.png")
        identity, video = synthvox.identity_index(row.identity), synthvox.video_index(row.video)
        scene = Scene.for_video(7, identity, video)
        assert np.array_equal(render(Identity.from_seed(7, identity), pose, 32, scene), frame)
        assert np.array_equal(recipe.render(identity, video, pose, 32), frame)
    assert table[list(POSE_COLUMNS)].equals(labels[list(POSE_COLUMNS)])  # the CSV holds the rendered values
    driver = table.iloc[-1]  # cross-identity ground truth: identity 0, in its video 1's scene, in identity 1's pose
    target = recipe.render(0, 1, Pose(**{c: driver[c] for c in POSE_COLUMNS}), 32)
    assert not np.array_equal(target, read_image(tmp_path / "sv" / "sv0001" / "v01" / "00002.png"))
    assert not np.array_equal(target, recipe.render(0, 0, Pose(**{c: driver[c] for c in POSE_COLUMNS}), 32))


def test_scene_changes_with_the_video_never_with_the_identity() -> None:
    """Two videos of one person differ in scene as much as videos of two people do, and the backdrop's brightness
    does not follow the skin's (v1 kept every backdrop darker than its identity's skin)."""
    seed, count = 12, 200
    scenes = [[Scene.for_video(seed, i, v) for v in range(2)] for i in range(count)]
    assert Scene.for_video(seed, 3, 1) == scenes[3][1] != scenes[3][0]

    def colours(a: Scene, b: Scene) -> float:
        """How far apart two scenes' backdrop and shirt colours are."""
        return float(np.abs(np.subtract([*a.backdrop_top, *a.shirt_color], [*b.backdrop_top, *b.shirt_color])).mean())

    same_identity = np.mean([colours(*pair) for pair in scenes])
    other_identity = np.mean([colours(scenes[i][0], scenes[(i + 1) % count][1]) for i in range(count)])
    assert 0.85 < same_identity / other_identity < 1.18, (same_identity, other_identity)  # 1.02
    grey = np.array([0.299, 0.587, 0.114])  # luminance weights
    skin = [grey @ Identity.from_seed(seed, i).skin for i in range(count)]
    backdrop = [grey @ pair[0].backdrop_top for pair in scenes]
    assert abs(np.corrcoef(skin, backdrop)[0, 1]) < 0.2  # -0.03 (v1: 0.55)
    assert len({s.head_scale for pair in scenes for s in pair}) == 2 * count  # framing and light vary too
    assert len({s.light_direction for pair in scenes for s in pair}) == 2 * count
    frames = [render(Identity.from_seed(seed, 0), Pose(), 32, scene) for scene in scenes[0]]
    assert np.abs(frames[0].astype(int) - frames[1]).mean() > 3.0


def test_head_offset_moves_the_head_in_the_frame() -> None:
    """An offset of 1/16 of the frame moves the head (and body) 4 pixels right at 64 px; the backdrop stays."""
    identity, pose = Identity.from_seed(0, 2), Pose(yaw=10.0, mouth_open=0.5)
    centred, moved = render(identity, pose, 64), render(identity, pose, 64, Scene(head_offset=(1 / 16, 0.0)))
    assert np.abs(centred[:, :-4].astype(int) - moved[:, 4:]).max() <= 1
    assert np.abs(centred.astype(int) - moved).mean() > 3.0


def test_recipe_versions_and_bad_recipes(tmp_path: Path) -> None:
    """v1 files (no version) still re-render: their scene is the identity's (values of the v1 code, seed 3)."""
    path = tmp_path / "synthvox.json"
    path.write_text(
        json.dumps(
            {"seed": 3, "identities": 6, "videos_per_identity": 2, "frames": 32, "size": 128, "image_format": "png"}
        )
    )
    recipe = Recipe.read(path)
    assert recipe == Recipe(seed=3, fps=25.0, version=1) and recipe.scene(5, 1) == version1_scene(3, 5)
    assert version1_scene(3, 0).backdrop_top == (0.13108058333447958, 0.12254537925671163, 0.05827885202196546)
    assert version1_scene(3, 5).shirt_color == (0.1934498137499451, 0.3868996274998902, 0.2253622156397797)
    for content, reason in (
        (None, "no such file"),
        ("{", "cannot read"),
        ("[3]", "not a SynthVox recipe"),
        ('{"version": 4, "seed": 1, "fps": 1.5}', "version 4"),
        ('{"version": 2, "seed": 1}', "fps must be a positive number"),
        ('{"version": 2, "seed": -1, "fps": 1.5}', "seed must be"),
    ):
        bad = tmp_path / "bad" / "synthvox.json"
        bad.unlink(missing_ok=True)
        if content is not None:
            bad.parent.mkdir(exist_ok=True)
            bad.write_text(content)
        with pytest.raises(DataError, match=reason) as raised:
            Recipe.read(bad)
        assert raised.value.path == bad


def test_smiles_of_version_3_widen_the_mouth_and_older_recipes_render_as_written() -> None:
    """A v3 smile changes half again as many pixels as a v2 smile at 64 px, and more than half as many as a blink; a
    v2 recipe re-renders with the v2 smile, so the ground truth of old collections stays what was written."""
    identity, scene = Identity.from_seed(5, 1), Scene.for_video(5, 1, 0)

    def changed(pose: Pose, recipe_smile) -> int:
        still = render(identity, Pose(), 64, scene, recipe_smile).astype(int)
        return int((np.abs(render(identity, pose, 64, scene, recipe_smile).astype(int) - still).max(-1) > 20).sum())

    smile = changed(Pose(smile=1.0), SMILE)
    assert smile > 1.5 * changed(Pose(smile=1.0), SMILE_V2) and smile > changed(Pose(blink=1.0), SMILE) / 2
    smiling = Pose(smile=0.8)
    assert np.array_equal(
        Recipe(5, version=2).render(1, 0, smiling, 32), render(identity, smiling, 32, scene, SMILE_V2)
    )
    assert not np.array_equal(Recipe(5).render(1, 0, smiling, 32), Recipe(5, version=2).render(1, 0, smiling, 32))


def test_within_video_share_of_variance() -> None:
    """Two videos [0, 2] and [10, 12]: within-video variance 1 each, total 26; a constant column has no share."""
    labels = pd.DataFrame(
        {
            "identity": ["a", "a", "b", "b"],
            "video": ["v", "v", "v", "v"],
            "yaw": [0.0, 2.0, 10.0, 12.0],
            "smile": [0.0, 1.0, 0.0, 1.0],
            "blink": [0.5] * 4,
        }
    )
    shares = within_video_share(labels, ["yaw", "smile", "blink"])
    assert shares["yaw"] == pytest.approx(1 / 26) and shares["smile"] == pytest.approx(1.0)
    assert np.isnan(shares["blink"])


def test_existing_collection_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "sv"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="already exists"):
        synthesize(out, seed=0, workers=1, progress=False, **TINY)
    assert _files(tmp_path) == {"sv/keep.txt": b"mine"}


def test_failure_mid_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def failing_render(identity: Identity, pose: Pose, size: int, scene: Scene) -> np.ndarray:
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
    assert np.array_equal(sheet[y : y + 32, x : x + 32], render(identities[1], poses[2], 32))
