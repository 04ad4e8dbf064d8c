"""SynthVox: synthetic talking-face videos with exact ground truth for identity and pose (DESIGN.md, "SynthVox").

This file owns what a collection contains: identities (the head itself: shape, skin, hair, eyes, features), the
recipe that re-renders any frame (`synthvox.json`), the atomic collection writer with its `labels.csv`, and the
contact sheet. Motion is `synthvox_motion`'s, the scene around a head (backdrop, clothes, light, framing)
`synthvox_scene`'s, drawing `synthvox_render`'s.

SynthVox v2 (recipe version 2) samples each video sparsely (`--fps`, 1.5 by default) over 15-30 s of talk, so
pose and expression vary within videos as in real talk, and draws a scene per video, independent of the identity.
Version 3 is version 2 with a smile that widens the mouth and parts the lips (`synthvox_render.SMILE`), visible at
64 px. Version 1 (no "version" in synthvox.json) sampled 1.3 s at 25 fps and tied backdrop and shirt to the
identity. Collections of every version still re-render as they were written (`version1_scene`, `SMILE_V2`), so
they can still be evaluated.

Choices made:
- Identities are spread over appearance space by a Kronecker (Weyl) low-discrepancy sequence over the identity
  index, with per-seed offsets: attribute k of identity i is frac(offset_k + i * step_k), step_k the fractional
  part of sqrt(prime_k) kept within [0.2, 0.8]. Consecutive identities therefore land in different hair styles,
  skin tones and hair colours, never near-copies as iid draws sometimes give. Coordinates 13-15 place v1's
  backdrop and shirt (`version1_scene`); a seed's faces are the same in both versions.
- Every random stream comes from `numpy.random.SeedSequence(seed, spawn_key=(stream, identity[, video]))`, so a
  frame's bytes depend only on (seed, identity, video, frame, fps), never on worker scheduling.
- Pose values are rounded before rendering (`synthvox_motion`), so `labels.csv` holds exactly what was rendered.
- Workers are spawned, not forked: safe beside a parent that already holds threads (torch, BLAS).
"""

from __future__ import annotations

import json
import multiprocessing
import re
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from model.atomic_write import atomic_folder
from model.data.errors import DataError
from model.data.images import write_image
from model.data.synthvox_motion import DEFAULT_FPS, PITCH_MAX, POSE_COLUMNS, ROLL_MAX, YAW_MAX, Pose, talking_trajectory
from model.data.synthvox_render import HAIR_STYLES, SMILE, SMILE_V2, Smile, render_frame
from model.data.synthvox_scene import Scene, hsv
from model.image_grid import image_grid

LABEL_COLUMNS = ("identity", "video", "frame", "time", *POSE_COLUMNS)
LABELS_FILE = "labels.csv"
RECIPE_FILE = "synthvox.json"  # how the collection was made (`Recipe` and the collection's shape)
RECIPE_VERSION = 3  # synthvox.json's "version": 2 since scenes are per video, 3 since smiles widen; v1: none
VERSION1_FPS = 25.0  # v1 sampled every frame of a 25-fps video
FRAME_DIGITS = 5  # frame file stems: 00000.png
IMAGE_FORMATS = ("png", "jpg")
IDENTITY_NAME, VIDEO_NAME = re.compile(r"^sv(\d+)$"), re.compile(r"^v(\d+)$")  # of `identity_name`, `video_name`
STREAM_SPREAD, STREAM_IDENTITY, STREAM_VIDEO = 0, 1, 2  # spawn keys of the independent random streams (the
# scene's is `synthvox_scene.STREAM_SCENE`)

SKIN_TONES = (
    (0.97, 0.82, 0.71),
    (0.93, 0.74, 0.6),
    (0.84, 0.62, 0.46),
    (0.7, 0.5, 0.34),
    (0.53, 0.36, 0.24),
    (0.4, 0.26, 0.17),
)  # light to dark; identities interpolate along this path
HAIR_COLOURS = (
    (0.07, 0.06, 0.05),
    (0.22, 0.14, 0.08),
    (0.42, 0.27, 0.14),
    (0.56, 0.23, 0.1),
    (0.86, 0.72, 0.45),
    (0.62, 0.62, 0.63),
    (0.15, 0.15, 0.2),
)  # black, dark brown, brown, auburn, blond, grey, blue-black
EYE_COLOURS = (
    (0.12, 0.07, 0.04),
    (0.22, 0.13, 0.06),
    (0.28, 0.22, 0.1),
    (0.15, 0.27, 0.18),
    (0.16, 0.26, 0.42),
    (0.28, 0.31, 0.34),
)  # dark brown, brown, hazel, green, blue, grey; dark enough to read as eyes
BROW_DARKNESS = 0.4  # brows are at most this fraction of the skin's brightness, even for blond or grey hair
VERSION1_BACKDROP_CONTRAST = 0.2  # v1's backdrop was at least this much darker than the identity's skin...
VERSION1_BACKDROP_VALUES = (0.06, 0.5)  # ...within this brightness range
VERSION1_FADE = 0.8  # ...and its bottom row this bright relative to its top
IDENTITY_DRAWS = 11  # values `Identity.from_seed` draws from the identity stream; v1 drew its scene after them


@dataclass(frozen=True)
class Identity:
    """Everything about a face that does not change while it talks, and nothing else (the scene is per video).
    Lengths are in head units (cranium half-height ~1); colours are linear RGB triples in [0, 1]."""

    head_width: float  # cranium half-width
    head_height: float  # cranium half-height: long or round faces
    head_depth: float  # cranium half-depth, front to back
    jaw_width: float  # lower-face half-width: narrow chins to square jaws
    jaw_height: float  # lower-face half-height: how far the chin reaches
    skin: tuple[float, float, float]
    hair_style: str  # a key of synthvox_render.HAIR_STYLES
    hair_color: tuple[float, float, float]
    hair_strands: float  # strand count around the head: fine or coarse hair texture
    brow_color: tuple[float, float, float]
    brow_thickness: float  # brow half-thickness
    brow_arch: float  # how much the brow rises in its middle
    eye_color: tuple[float, float, float]
    eye_spacing: float  # half the distance between the eye centres
    eye_y: float  # eye height on the face
    eye_size: float  # eye half-width
    nose_width: float
    nose_length: float
    nose_depth: float
    mouth_width: float  # mouth half-width
    lip_color: tuple[float, float, float]
    lip_thickness: float
    ear_size: float  # scale of the ears

    @classmethod
    def from_seed(cls, seed: int, index: int) -> Identity:
        """Identity number `index` of the collection made with `seed`: the same arguments give the same face."""
        u = _spread(seed, index)
        rng = _identity_rng(seed, index)
        skin = _along(SKIN_TONES, u[1])
        hair = HAIR_COLOURS[int(u[2] * len(HAIR_COLOURS))]
        lip = tuple(np.clip(np.array(skin) * [0.75, 0.45, 0.45] + rng.uniform(0.0, 0.06, 3), 0.0, 1.0))
        return cls(
            head_width=0.7 + 0.12 * u[3],
            head_height=0.95 + 0.12 * u[4],
            head_depth=0.85 + 0.08 * rng.random(),
            jaw_width=0.5 + 0.16 * u[5],
            jaw_height=0.62 + 0.1 * u[6],
            skin=skin,
            hair_style=tuple(HAIR_STYLES)[int(u[0] * len(HAIR_STYLES))],
            hair_color=hair,
            hair_strands=40.0 + 40.0 * rng.random(),
            brow_color=tuple(float(c) for c in np.minimum(np.array(hair) * 0.45, np.array(skin) * BROW_DARKNESS)),
            brow_thickness=0.028 + 0.016 * u[7],
            brow_arch=0.01 + 0.04 * rng.random(),
            eye_color=EYE_COLOURS[int(u[8] * len(EYE_COLOURS))],
            eye_spacing=0.26 + 0.06 * u[9],
            eye_y=0.08 + 0.06 * rng.random(),
            eye_size=0.12 + 0.03 * u[10],
            nose_width=0.09 + 0.05 * u[11],
            nose_length=0.22 + 0.08 * rng.random(),
            nose_depth=0.16 + 0.06 * rng.random(),
            mouth_width=0.2 + 0.08 * u[12],
            lip_color=tuple(float(c) for c in lip),
            lip_thickness=0.035 + 0.02 * rng.random(),
            ear_size=0.85 + 0.3 * rng.random(),
        )


def _identity_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of identity `index`'s attributes that are not spread (`_spread`)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM_IDENTITY, index)))


def version1_scene(seed: int, index: int) -> Scene:
    """The scene SynthVox v1 tied to identity `index` of `seed`, in every one of its videos: a backdrop darker than
    the skin, a shirt, the neutral light and framing. It re-renders v1 collections for evaluation."""
    u = _spread(seed, index)
    rng = _identity_rng(seed, index)
    rng.random(IDENTITY_DRAWS)  # v1 drew the identity first, then the backdrop's saturation and the shirt's value
    backdrop = hsv(u[13], 0.25 + 0.35 * rng.random(), _away_from(_luminance(_along(SKIN_TONES, u[1])), u[14]))
    return Scene(
        backdrop_top=backdrop,
        backdrop_bottom=tuple(c * VERSION1_FADE for c in backdrop),
        shirt_color=hsv(u[15], 0.5, 0.35 + 0.45 * rng.random()),
    )


def _spread(seed: int, index: int) -> np.ndarray:
    """The 16 low-discrepancy coordinates in [0, 1) of identity `index`: a Kronecker sequence with seeded offsets."""
    primes = [p for p in range(2, 200) if all(p % q for q in range(2, int(p**0.5) + 1))]
    steps = [s for s in (np.sqrt(primes) % 1.0) if 0.2 <= s <= 0.8][:16]
    steps[0] = (np.sqrt(5.0) - 1.0) / 2.0  # hair style: the golden step, the most even spread of all
    offsets = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM_SPREAD,))).random(len(steps))
    return (offsets + index * np.array(steps)) % 1.0


def _along(palette: Sequence[tuple[float, float, float]], u: float) -> tuple[float, float, float]:
    """The colour a fraction `u` in [0, 1] of the way along a palette path, linearly interpolated."""
    pos = u * (len(palette) - 1)
    lo = min(int(pos), len(palette) - 2)
    mixed = np.array(palette[lo]) + (np.array(palette[lo + 1]) - np.array(palette[lo])) * (pos - lo)
    return tuple(float(c) for c in mixed)


def _luminance(rgb: Sequence[float]) -> float:
    """Perceived brightness of an RGB colour (Rec. 601 weights, as OpenCV's grey conversion)."""
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _away_from(level: float, u: float) -> float:
    """A v1 backdrop brightness picked by `u`, darker than `level` by VERSION1_BACKDROP_CONTRAST or more."""
    darkest, brightest = VERSION1_BACKDROP_VALUES
    return darkest + u * (min(brightest, max(darkest, level - VERSION1_BACKDROP_CONTRAST)) - darkest)


def identity_name(index: int) -> str:
    """Folder name of identity `index` in a collection: ``sv0007``."""
    return f"sv{index:04d}"


def video_name(index: int) -> str:
    """Folder name of video `index` of an identity: ``v00``."""
    return f"v{index:02d}"


def identity_index(name: str) -> int | None:
    """The index `identity_name` made `name` from, None when it is not a SynthVox identity folder name."""
    match = IDENTITY_NAME.match(name)
    return None if match is None else int(match.group(1))


def video_index(name: str) -> int | None:
    """The index `video_name` made `name` from, None when it is not a SynthVox video folder name."""
    match = VIDEO_NAME.match(name)
    return None if match is None else int(match.group(1))


def render(identity: Identity, pose: Pose, size: int, scene: Scene | None = None, smile: Smile = SMILE) -> np.ndarray:
    """Any identity in any pose in any scene (default: the neutral `Scene()`), `(size, size, 3)` uint8 RGB: exact
    ground truth for cross-identity reenactment. `smile`: the current recipe's (`SMILE`) or an older one's."""
    assert size >= 1, size
    return render_frame(identity, pose, size, Scene() if scene is None else scene, smile)


@dataclass(frozen=True)
class Recipe:
    """What re-renders a collection's frames, as `synthvox.json` records it beside the collection's shape: any
    identity, in any pose, in the scene of any video (`render`), the ground truth of cross-identity reenactment."""

    seed: int
    fps: float = DEFAULT_FPS  # frames per second of the trajectories: label time = frame / fps
    version: int = RECIPE_VERSION  # 1: scene tied to the identity (`version1_scene`), 2: a scene per video, 3: smiles

    @classmethod
    def read(cls, path: str | Path) -> Recipe:
        """The recipe in a `synthvox.json`; `DataError` naming the file when it is missing or not a recipe."""
        path = Path(path)
        try:
            recipe = json.loads(path.read_text())
        except FileNotFoundError as err:
            raise DataError(
                path,
                "no such file: labelled frames need the SynthVox seed that rendered them (`daegan synth` writes it)",
            ) from err
        except (OSError, ValueError) as err:
            raise DataError(path, f"cannot read the SynthVox recipe ({err.__class__.__name__})") from err
        if not isinstance(recipe, dict):
            raise DataError(path, "not a SynthVox recipe (a JSON object with the seed)")
        version = recipe.get("version", 1)
        if version not in range(1, RECIPE_VERSION + 1) or isinstance(version, bool):
            raise DataError(
                path, f"SynthVox recipe version {version!r}: this posedex reads versions 1 to {RECIPE_VERSION}"
            )
        seed = recipe.get("seed")
        fps = recipe.get("fps", VERSION1_FPS if version == 1 else None)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise DataError(path, f"seed must be a non-negative integer, got {seed!r}")
        if not isinstance(fps, int | float) or isinstance(fps, bool) or not fps > 0:
            raise DataError(path, f"fps must be a positive number, got {fps!r}")
        return cls(seed=seed, fps=float(fps), version=version)

    def scene(self, identity: int, video: int) -> Scene:
        """The scene of video number `video` of identity number `identity`."""
        if self.version == 1:
            return version1_scene(self.seed, identity)
        return Scene.for_video(self.seed, identity, video)

    def trajectory(self, identity: int, video: int, frames: int) -> list[Pose]:
        """The poses of the first `frames` frames of video number `video` of identity number `identity` (v2 and
        later: v1's motion is gone, its labels hold its poses)."""
        assert self.version >= 2, f"recipe version {self.version} trajectories are not reproduced"
        return talking_trajectory(video_rng(self.seed, identity, video), frames, self.fps)

    def render(self, identity: int, video: int, pose: Pose, size: int) -> np.ndarray:
        """Identity number `identity` in `pose` in the scene of video number `video` (any identity's video):
        `(size, size, 3)` uint8 RGB, the bytes `synthesize` wrote when the pose is that video's."""
        smile = SMILE if self.version >= 3 else SMILE_V2
        return render(Identity.from_seed(self.seed, identity), pose, size, self.scene(identity, video), smile)


@dataclass(frozen=True)
class _VideoJob:
    """One (identity, video) to render into `root`: the unit of work a worker process gets."""

    root: Path
    seed: int
    identity: int
    video: int
    frames: int
    fps: float
    size: int
    image_format: str


def video_rng(seed: int, identity: int, video: int) -> np.random.Generator:
    """The random stream of one video's trajectory: keyed by (seed, identity, video) only, never by scheduling."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM_VIDEO, identity, video)))


def _render_video(job: _VideoJob) -> list[dict[str, object]]:
    """Render and write one video's frames; return its label rows."""
    identity = Identity.from_seed(job.seed, job.identity)
    scene = Scene.for_video(job.seed, job.identity, job.video)
    folder = job.root / identity_name(job.identity) / video_name(job.video)
    folder.mkdir(parents=True)
    rows = []
    for frame, pose in enumerate(Recipe(job.seed, job.fps).trajectory(job.identity, job.video, job.frames)):
        write_image(folder / f"{frame:0{FRAME_DIGITS}d}.{job.image_format}", render(identity, pose, job.size, scene))
        rows.append(
            {
                "identity": identity_name(job.identity),
                "video": video_name(job.video),
                "frame": frame,
                "time": frame / job.fps,
                **{c: getattr(pose, c) for c in POSE_COLUMNS},
            }
        )
    return rows


def _check_target(out: Path) -> None:
    """Refuse to overwrite: `out` must not exist, or be an empty folder."""
    if out.is_dir() and any(out.iterdir()):
        raise DataError(out, "already exists; SynthVox writes a new collection only (choose another --out)")
    if out.exists() and not out.is_dir():
        raise DataError(out, "already exists and is not a folder")


def synthesize(
    out: Path,
    *,
    identities: int,
    videos_per_identity: int,
    frames: int,
    size: int,
    seed: int,
    fps: float = DEFAULT_FPS,
    workers: int = 2,
    image_format: str = "png",
    progress: bool = True,
) -> pd.DataFrame:
    """Write a SynthVox frame collection `out/<identity>/<video>/<frame>.<png|jpg>` plus `out/labels.csv` and
    `out/synthvox.json` (the arguments that made it, with the recipe version: `Recipe.read` of it re-renders any
    identity in any pose in any video's scene, the ground truth `daegan evaluate` compares cross-identity
    reenactment with). Each video is `frames` frames sampled at `fps` from a talking trajectory
    (`synthvox_motion`) in its own scene (`Scene.for_video`).

    Returns the labels table: one row per frame with LABEL_COLUMNS (time = frame / fps in seconds, pose as in
    `Pose`). Atomic: everything is written into a hidden sibling folder renamed into place at the end, so a crash
    or Ctrl-C leaves no `out` at all. Same arguments (whatever `workers`) give the same bytes.
    """
    out = Path(out)
    assert min(identities, videos_per_identity, frames, size, workers) >= 1 and seed >= 0, "counts must be positive"
    assert fps > 0, fps
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, not {image_format!r}")
    _check_target(out)
    bar = tqdm(total=identities * videos_per_identity * frames, unit="frame", desc="synthvox", disable=not progress)
    with closing(bar), atomic_folder(out, replace=False) as staging:
        jobs = [
            _VideoJob(staging, seed, i, v, frames, fps, size, image_format)
            for i in range(identities)
            for v in range(videos_per_identity)
        ]
        rows: list[dict[str, object]] = []
        if workers == 1:
            for job in jobs:
                rows += _render_video(job)
                bar.update(frames)
        else:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                try:
                    for future in as_completed([pool.submit(_render_video, job) for job in jobs]):
                        rows += future.result()
                        bar.update(frames)
                except BaseException:
                    pool.shutdown(cancel_futures=True)
                    raise
        labels = pd.DataFrame(rows, columns=list(LABEL_COLUMNS)).sort_values(["identity", "video", "frame"])
        labels = labels.reset_index(drop=True)
        labels.to_csv(staging / LABELS_FILE, index=False)
        recipe = {
            "version": RECIPE_VERSION,
            "seed": seed,
            "fps": fps,
            "identities": identities,
            "videos_per_identity": videos_per_identity,
            "frames": frames,
            "size": size,
            "image_format": image_format,
            "head_range_deg": [YAW_MAX, PITCH_MAX, ROLL_MAX],  # the motion drawn: yaw, pitch, roll stay within
        }
        (staging / RECIPE_FILE).write_text(json.dumps(recipe, indent=2) + "\n")
        _check_target(out)  # nobody wrote there meanwhile; an empty folder the caller made is replaced
    return labels


CONTACT_SHEET_POSES = (
    Pose(),
    Pose(yaw=-40.0),
    Pose(yaw=40.0),
    Pose(pitch=20.0),
    Pose(pitch=-20.0),
    Pose(roll=15.0),
    Pose(mouth_open=1.0),
    Pose(smile=1.0),
    Pose(blink=1.0, brow_raise=1.0),
)
CONTACT_SHEET_GUTTER = 2  # pixels of white between cells: frames with similar backdrops stay apart


def contact_sheet(identities: Sequence[Identity], poses: Sequence[Pose], size: int) -> np.ndarray:
    """A grid of renders, identities down and poses across: `(rows * (size + g) + g, cols * (size + g) + g, 3)`
    uint8 RGB with a white gutter g, every face in the neutral scene. `docs/synthvox_contact_sheet.png` is
    `contact_sheet` of 8 identities of seed 0 in CONTACT_SHEET_POSES."""
    tiles = [[render(identity, pose, size) for pose in poses] for identity in identities]
    return np.array(image_grid(tiles, tile_size=size, gutter=CONTACT_SHEET_GUTTER))
