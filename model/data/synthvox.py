"""SynthVox: synthetic talking-face videos with exact ground truth for identity and pose (DESIGN.md, "SynthVox").

This file owns what a collection contains: identities (appearance), poses, talking trajectories, the atomic
collection writer with its `labels.csv`, and the contact sheet. Drawing a head is `synthvox_render`'s job.

Choices made:
- Identities are spread over appearance space by a Kronecker (Weyl) low-discrepancy sequence over the identity
  index, with per-seed offsets: attribute k of identity i is frac(offset_k + i * step_k), step_k the fractional
  part of sqrt(prime_k) kept within [0.2, 0.8]. Consecutive identities therefore land in different hair styles,
  skin tones, hair colours and backgrounds, never near-copies as iid draws sometimes give.
- Every random stream comes from `numpy.random.SeedSequence(seed, spawn_key=(stream, identity[, video]))`, so a
  frame's bytes depend only on (seed, identity, video, frame), never on worker scheduling.
- Pose values are rounded to POSE_DECIMALS before rendering, so `labels.csv` holds exactly what was rendered.
- The nominal frame rate is 25 fps (VoxCeleb's); trajectories are written in seconds and sampled at it.
- Workers are spawned, not forked: safe beside a parent that already holds threads (torch, BLAS).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import secrets
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from model.data.errors import DataError
from model.data.images import write_image
from model.data.synthvox_render import HAIR_STYLES, render_frame

POSE_COLUMNS = ("yaw", "pitch", "roll", "mouth_open", "smile", "blink", "brow_raise")
LABEL_COLUMNS = ("identity", "video", "frame", "time", *POSE_COLUMNS)
LABELS_FILE = "labels.csv"
RECIPE_FILE = "synthvox.json"  # how the collection was made (seed, size): what re-renders its identities in any pose
FPS = 25.0  # SynthVox's nominal frame rate (VoxCeleb's): label time = frame / FPS
FRAME_DIGITS = 5  # frame file stems: 00000.png
IMAGE_FORMATS = ("png", "jpg")
POSE_DECIMALS = 4  # labels round-trip through CSV exactly; 1e-4 degrees is far below a pixel
YAW_MAX, PITCH_MAX, ROLL_MAX = 45.0, 25.0, 20.0  # degrees: the pose ranges a trajectory stays within
HEAD_HZ = (0.12, 0.5)  # head motion frequencies: slow turns, yet visible within a 32-frame (1.3 s) clip
EXPRESSION_HZ = (0.05, 0.3)  # smile and brow raise drift slower than the head
TALK_HZ = (0.08, 0.25)  # talking spells alternate with pauses at this rate
SYLLABLE_HZ = (3.0, 5.0)  # syllables per second while talking
BLINK_INTERVAL_S = 3.0  # mean time between blinks (people blink ~15-20 times a minute)
BLINK_DURATION_S = 0.24  # a blink closes and reopens the eye in about a quarter second
WAVE_TERMS = 3  # sinusoids summed for each smooth signal
STREAM_SPREAD, STREAM_IDENTITY, STREAM_VIDEO = 0, 1, 2  # spawn keys of the independent random streams

SKIN_TONES = ((0.97, 0.82, 0.71), (0.93, 0.74, 0.6), (0.84, 0.62, 0.46), (0.7, 0.5, 0.34), (0.53, 0.36, 0.24),
              (0.4, 0.26, 0.17))  # light to dark; identities interpolate along this path
HAIR_COLOURS = ((0.07, 0.06, 0.05), (0.22, 0.14, 0.08), (0.42, 0.27, 0.14), (0.56, 0.23, 0.1), (0.86, 0.72, 0.45),
                (0.62, 0.62, 0.63), (0.15, 0.15, 0.2))  # black, dark brown, brown, auburn, blond, grey, blue-black
EYE_COLOURS = ((0.12, 0.07, 0.04), (0.22, 0.13, 0.06), (0.28, 0.22, 0.1), (0.15, 0.27, 0.18), (0.16, 0.26, 0.42),
               (0.28, 0.31, 0.34))  # dark brown, brown, hazel, green, blue, grey; dark enough to read as eyes
BROW_DARKNESS = 0.4  # brows are at most this fraction of the skin's brightness, even for blond or grey hair
BACKGROUND_CONTRAST = 0.2  # the backdrop is at least this much darker than the skin: the face stands out
BACKGROUND_VALUES = (0.06, 0.5)  # backdrop brightness range; OpenCV's Haar cascade misses faces before bright
# backdrops far more often (a bright surround inflates the window's variance, drowning the eye/cheek contrast)


@dataclass(frozen=True)
class Pose:
    """Head pose and expression of one frame.

    yaw, pitch, roll in degrees (positive yaw turns the face to image right, positive pitch lifts the chin,
    positive roll tilts the head counter-clockwise); mouth_open, smile, blink, brow_raise in [0, 1] (blink = 1:
    eyes closed). `Pose()` is frontal and neutral.
    """

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    mouth_open: float = 0.0
    smile: float = 0.0
    blink: float = 0.0
    brow_raise: float = 0.0


@dataclass(frozen=True)
class Identity:
    """Everything about a face that does not change while it talks. Lengths are in head units (cranium
    half-height ~1); colours are linear RGB triples in [0, 1]."""

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
    background: tuple[float, float, float]
    shirt_color: tuple[float, float, float]

    @classmethod
    def from_seed(cls, seed: int, index: int) -> Identity:
        """Identity number `index` of the collection made with `seed`: the same arguments give the same face."""
        u = _spread(seed, index)
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM_IDENTITY, index)))
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
            background=_hsv(u[13], 0.25 + 0.35 * rng.random(), _away_from(_luminance(skin), u[14])),
            shirt_color=_hsv(u[15], 0.5, 0.35 + 0.45 * rng.random()),
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
    """A backdrop brightness in BACKGROUND_VALUES picked by `u`, darker than `level` by BACKGROUND_CONTRAST or more."""
    darkest, brightest = BACKGROUND_VALUES
    return darkest + u * (min(brightest, max(darkest, level - BACKGROUND_CONTRAST)) - darkest)


def _hsv(hue: float, saturation: float, value: float) -> tuple[float, float, float]:
    """An RGB triple from hue, saturation, value in [0, 1]."""
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6.0) % 6.0
    rgb = value - value * saturation * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return tuple(float(c) for c in rgb)


def identity_name(index: int) -> str:
    """Folder name of identity `index` in a collection: ``sv0007``."""
    return f"sv{index:04d}"


def video_name(index: int) -> str:
    """Folder name of video `index` of an identity: ``v00``."""
    return f"v{index:02d}"


def render(identity: Identity, pose: Pose, size: int) -> np.ndarray:
    """Any identity in any pose, `(size, size, 3)` uint8 RGB: exact ground truth for cross-identity reenactment."""
    assert size >= 1, size
    return render_frame(identity, pose, size)


def _wave(rng: np.random.Generator, t: np.ndarray, hz: tuple[float, float]) -> np.ndarray:
    """A smooth random signal in [-1, 1]: sinusoids with random frequencies in `hz`, phases and weights."""
    freqs, phases = rng.uniform(*hz, WAVE_TERMS), rng.uniform(0.0, 2.0 * np.pi, WAVE_TERMS)
    weights = rng.uniform(0.3, 1.0, WAVE_TERMS)
    wave = (weights[:, None] * np.sin(2.0 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0) / weights.sum()
    scale = rng.uniform(0.35, 1.0)  # some videos turn a lot, some a little
    return rng.uniform(scale - 1.0, 1.0 - scale) + scale * wave  # an offset keeps it within [-1, 1]


def _blinks(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Eye closure in [0, 1]: short blinks at random times, a mean BLINK_INTERVAL_S apart."""
    closure = np.zeros_like(t)
    at = rng.uniform(-BLINK_DURATION_S, BLINK_INTERVAL_S)
    while at < t[-1] + BLINK_DURATION_S:
        closure = np.maximum(closure, np.clip(1.5 * (1.0 - np.abs(t - at) / (BLINK_DURATION_S / 2)), 0.0, 1.0))
        at += BLINK_DURATION_S + rng.exponential(BLINK_INTERVAL_S)
    return closure


def talking_trajectory(rng: np.random.Generator, num_frames: int) -> list[Pose]:
    """Poses of a talking head sampled at FPS: slow smooth head motion within the yaw/pitch/roll ranges, the mouth
    opening at syllable rhythm during talking spells, occasional blinks, smile and brow raise drifting slowly."""
    t = np.arange(num_frames) / FPS
    yaw, pitch, roll = (m * _wave(rng, t, HEAD_HZ) for m in (YAW_MAX, PITCH_MAX, ROLL_MAX))
    talking = np.clip(0.5 + 1.5 * np.sin(2.0 * np.pi * rng.uniform(*TALK_HZ) * t + rng.uniform(0, 2 * np.pi)), 0, 1)
    rate = rng.uniform(*SYLLABLE_HZ) + 0.8 * np.sin(2.0 * np.pi * 0.3 * t + rng.uniform(0, 2 * np.pi))
    syllables = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.cumsum(rate) / FPS + rng.uniform(0, 2 * np.pi))
    loudness = 0.55 + 0.45 * _wave(rng, t, EXPRESSION_HZ)
    mouth_open = talking * syllables * loudness
    smile = np.clip(_wave(rng, t, EXPRESSION_HZ), 0.0, 1.0)  # neutral about half the time
    brow_raise = np.clip(0.3 + 0.7 * _wave(rng, t, EXPRESSION_HZ), 0.0, 1.0)
    blink = _blinks(rng, t)
    values = np.round(np.stack([yaw, pitch, roll, mouth_open, smile, blink, brow_raise], axis=1), POSE_DECIMALS)
    return [Pose(*map(float, row)) for row in values]  # (num_frames, 7) -> poses


@dataclass(frozen=True)
class _VideoJob:
    """One (identity, video) to render into `root`: the unit of work a worker process gets."""

    root: Path
    seed: int
    identity: int
    video: int
    frames: int
    size: int
    image_format: str


def video_rng(seed: int, identity: int, video: int) -> np.random.Generator:
    """The random stream of one video's trajectory: keyed by (seed, identity, video) only, never by scheduling."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM_VIDEO, identity, video)))


def _render_video(job: _VideoJob) -> list[dict[str, object]]:
    """Render and write one video's frames; return its label rows."""
    identity = Identity.from_seed(job.seed, job.identity)
    folder = job.root / identity_name(job.identity) / video_name(job.video)
    folder.mkdir(parents=True)
    rows = []
    for frame, pose in enumerate(talking_trajectory(video_rng(job.seed, job.identity, job.video), job.frames)):
        write_image(folder / f"{frame:0{FRAME_DIGITS}d}.{job.image_format}", render(identity, pose, job.size))
        rows.append({"identity": identity_name(job.identity), "video": video_name(job.video), "frame": frame,
                     "time": frame / FPS, **{c: getattr(pose, c) for c in POSE_COLUMNS}})
    return rows


def _check_target(out: Path) -> None:
    """Refuse to overwrite: `out` must not exist, or be an empty folder."""
    if out.is_dir() and any(out.iterdir()):
        raise DataError(out, "already exists; SynthVox writes a new collection only (choose another --out)")
    if out.exists() and not out.is_dir():
        raise DataError(out, "already exists and is not a folder")


def synthesize(out: Path, *, identities: int, videos_per_identity: int, frames: int, size: int, seed: int,
               workers: int = 2, image_format: str = "png", progress: bool = True) -> pd.DataFrame:
    """Write a SynthVox frame collection `out/<identity>/<video>/<frame>.<png|jpg>` plus `out/labels.csv` and
    `out/synthvox.json` (the arguments that made it: with the seed, `Identity.from_seed` re-renders any of its
    identities in any pose, the ground truth `daegan evaluate` compares cross-identity reenactment with).

    Returns the labels table: one row per frame with LABEL_COLUMNS (time in seconds at FPS, pose as in `Pose`).
    Atomic: everything is written into a hidden sibling folder renamed into place at the end, so a crash or
    Ctrl-C leaves no `out` at all. Same arguments (whatever `workers`) give the same bytes.
    """
    out = Path(out)
    assert min(identities, videos_per_identity, frames, size, workers) >= 1 and seed >= 0, "counts must be positive"
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, not {image_format!r}")
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.{os.getpid()}-{secrets.token_hex(4)}.partial"  # hidden, unique
    staging.mkdir()
    jobs = [_VideoJob(staging, seed, i, v, frames, size, image_format)
            for i in range(identities) for v in range(videos_per_identity)]
    rows: list[dict[str, object]] = []
    bar = tqdm(total=len(jobs) * frames, unit="frame", desc="synthvox", disable=not progress)
    try:
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
        recipe = {"seed": seed, "identities": identities, "videos_per_identity": videos_per_identity,
                  "frames": frames, "size": size, "image_format": image_format}
        (staging / RECIPE_FILE).write_text(json.dumps(recipe, indent=2) + "\n")
        _check_target(out)  # nobody wrote there meanwhile
        if out.is_dir():
            out.rmdir()  # an empty folder the caller made: replaced by the finished collection
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        bar.close()
    return labels


CONTACT_SHEET_POSES = (Pose(), Pose(yaw=-40.0), Pose(yaw=40.0), Pose(pitch=20.0), Pose(pitch=-20.0),
                       Pose(roll=15.0), Pose(mouth_open=1.0, smile=1.0), Pose(blink=1.0, brow_raise=1.0))
CONTACT_SHEET_GUTTER = 2  # pixels of white between cells: frames with similar backdrops stay apart


def contact_sheet(identities: Sequence[Identity], poses: Sequence[Pose], size: int) -> np.ndarray:
    """A grid of renders, identities down and poses across: `(rows * (size + g) + g, cols * (size + g) + g, 3)`
    uint8 RGB with a white gutter g. `docs/synthvox_contact_sheet.png` is `contact_sheet` of 8 identities of seed
    0 in CONTACT_SHEET_POSES."""
    gutter = CONTACT_SHEET_GUTTER
    sheet = np.full((len(identities) * (size + gutter) + gutter, len(poses) * (size + gutter) + gutter, 3), 255,
                    dtype=np.uint8)
    for row, identity in enumerate(identities):
        for col, pose in enumerate(poses):
            y, x = gutter + row * (size + gutter), gutter + col * (size + gutter)
            sheet[y:y + size, x:x + size] = render(identity, pose, size)
    return sheet
