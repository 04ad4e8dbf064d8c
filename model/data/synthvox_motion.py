"""SynthVox's motion: the pose and expression of a talking head over time (DESIGN.md, "SynthVox").

This file owns `Pose` (one frame's head pose and expression) and `talking_trajectory` (a video's poses sampled
at a frame rate). Identity, scene and rendering live elsewhere (`synthvox`, `synthvox_scene`, `synthvox_render`).

Choices made:
- Motion is written in continuous time (seconds) and sampled at `fps`: the same random stream gives the same
  motion whatever the rate. SynthVox v2 samples sparsely (DEFAULT_FPS frames a second, VoxCeleb's 1-fps crops
  are alike) over 15-30 s, so that pose and expression vary *within* each video as in real talk.
- Every parameter is a stationary process with the same distribution in every video: what varies between videos
  is the scene, not how a face sits. Only the head's resting pose moves a little per video (the camera is rarely
  straight in front). Most of each parameter's variance therefore lies within videos
  (`label_stats.within_video_share`, about 0.9 for videos of 15 s and longer).
- Head yaw, pitch and roll are sums of WAVE_TERMS sinusoids (random frequencies in HEAD_HZ, random phases),
  squashed by tanh into the pose ranges: smooth at any frame rate, near frontal most of the time, reaching the
  range's edges now and then. The amplitude varies per video: some people move their heads more than others.
- The ranges match real talking heads: dlib measures a yaw / pitch / roll spread (std) of 12.8 / 3.4 / 6.3 degrees
  over FG-net's franck, 4.3-8.2 / 1.8-4.2 / 2.6-5.9 over the cap and carphone clips and 10.6 / 11.5 / 4.6 over ORL's
  photos; ranges of 25 / 14 / 11 degrees give 13 / 7.5 / 6. (They were 45 / 25 / 20, a spread of 24 / 13.5 /
  10.7, twice a real one: a 2-D warp cannot turn one embedded face that far, and the face embedder averaged the
  frames into a featureless head.)
- The mouth opens at syllable rhythm during talking spells that alternate with pauses; smile and brow raise are
  smooth processes clipped to [0, 1], so a face spends spells at neutral, smiles a while, lifts its brows.
- Blinks are events of a real duration (BLINK_DURATION_S) at a raised rate (one per BLINK_INTERVAL_S on
  average, people blink every 3-4 s). A frame sampled at 1-2 fps is an independent look at the eyes, so what
  matters is the share of time the eyes are closing: at a real rate a closed eye would be in ~3% of the frames,
  too few to learn blinking from; at this rate about a quarter of the frames are mid-blink, a tenth closed.
  Events rather than a state drawn per frame keep a blink a smooth close-and-open when sampled at 25 fps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POSE_COLUMNS = ("yaw", "pitch", "roll", "mouth_open", "smile", "blink", "brow_raise")
POSE_DECIMALS = 4  # labels round-trip through CSV exactly; 1e-4 degrees is far below a pixel
DEFAULT_FPS = 1.5  # frames a second SynthVox v2 samples: 24 frames cover 16 s of talk
YAW_MAX, PITCH_MAX, ROLL_MAX = 25.0, 14.0, 11.0  # degrees: the pose ranges a trajectory stays within (docstring)
HEAD_GAIN = 0.9  # tanh gain on the unit-variance head signal: |yaw| beyond 0.8 * YAW_MAX about 10% of the time
HEAD_AMPLITUDE = (0.6, 1.0)  # per-video scale of head motion: some people move their heads more than others
HEAD_REST = 0.25  # per-video resting pose, before the tanh: the camera is rarely straight in front
HEAD_HZ = (0.07, 0.3)  # head motion frequencies: turns of a few seconds, several of them within a video
EXPRESSION_HZ = (0.08, 0.35)  # smile drifts over seconds
BROW_HZ = (0.1, 0.5)  # brows lift for emphasis, in shorter flashes
TALK_HZ = (0.1, 0.3)  # talking spells alternate with pauses at this rate
SYLLABLE_HZ = (3.0, 5.0)  # syllables per second while talking
SYLLABLE_RATE_SWING, SYLLABLE_RATE_HZ = 0.8, 0.3  # the syllable rate speeds up and slows down by this much
BLINK_INTERVAL_S = 1.2  # mean time between blink onsets: raised from a real 3-4 s (module docstring)
BLINK_DURATION_S = 0.3  # a blink closes and reopens the eye in about a third of a second
WAVE_TERMS = 6  # sinusoids summed for each smooth signal: close to a Gaussian process


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


def _wave(rng: np.random.Generator, t: np.ndarray, hz: tuple[float, float]) -> np.ndarray:
    """A smooth stationary random signal of mean 0 and variance 1 at times `t` (seconds): WAVE_TERMS sinusoids
    with random frequencies in `hz` and random phases."""
    freqs, phases = rng.uniform(*hz, WAVE_TERMS), rng.uniform(0.0, 2.0 * np.pi, WAVE_TERMS)
    return np.sqrt(2.0 / WAVE_TERMS) * np.sin(2.0 * np.pi * freqs[:, None] * t + phases[:, None]).sum(0)


def _head(rng: np.random.Generator, t: np.ndarray, limit: float) -> np.ndarray:
    """One head angle in degrees within (-limit, limit): a smooth signal squashed into the range."""
    rest, amplitude = rng.uniform(-HEAD_REST, HEAD_REST), rng.uniform(*HEAD_AMPLITUDE)
    return limit * np.tanh(HEAD_GAIN * (rest + amplitude * _wave(rng, t, HEAD_HZ)))


def _mouth(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Mouth opening in [0, 1]: syllables during talking spells, louder and softer."""
    talking = np.clip(0.5 + 1.5 * np.sin(2.0 * np.pi * rng.uniform(*TALK_HZ) * t + rng.uniform(0, 2 * np.pi)), 0, 1)
    rate, swing_phase = rng.uniform(*SYLLABLE_HZ), rng.uniform(0, 2 * np.pi)
    swing = 2.0 * np.pi * SYLLABLE_RATE_HZ
    cycles = rate * t + SYLLABLE_RATE_SWING / swing * (np.cos(swing_phase) - np.cos(swing * t + swing_phase))
    syllables = 0.5 - 0.5 * np.cos(2.0 * np.pi * cycles + rng.uniform(0, 2 * np.pi))  # cycles: the rate's integral
    loudness = np.clip(0.7 + 0.25 * _wave(rng, t, EXPRESSION_HZ), 0.0, 1.0)
    return talking * syllables * loudness


def _blinks(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Eye closure in [0, 1]: blinks of BLINK_DURATION_S, onsets a mean BLINK_INTERVAL_S apart; each closes
    the eye over its first third, holds it shut, and opens it over its last third."""
    closure = np.zeros_like(t)
    gap = BLINK_INTERVAL_S - BLINK_DURATION_S  # the mean open time between two blinks
    start = rng.uniform(-BLINK_INTERVAL_S, 0.0)
    while start < t[-1]:
        middle = start + BLINK_DURATION_S / 2
        closure = np.maximum(closure, np.clip(1.5 * (1.0 - np.abs(t - middle) / (BLINK_DURATION_S / 2)), 0.0, 1.0))
        start += BLINK_DURATION_S + rng.exponential(gap)
    return closure


def talking_trajectory(rng: np.random.Generator, num_frames: int, fps: float = DEFAULT_FPS) -> list[Pose]:
    """Poses of a talking head at times frame / `fps` (module docstring): smooth head motion within the
    yaw/pitch/roll ranges, the mouth opening at syllable rhythm during talking spells, blinks, smiles and brow
    raises. The values are rounded to POSE_DECIMALS: what is rendered is what the labels say."""
    assert num_frames >= 1 and fps > 0, (num_frames, fps)
    t = np.arange(num_frames) / fps
    yaw, pitch, roll = (_head(rng, t, limit) for limit in (YAW_MAX, PITCH_MAX, ROLL_MAX))
    mouth_open = _mouth(rng, t)
    smile = np.clip(0.25 + 0.5 * _wave(rng, t, EXPRESSION_HZ), 0.0, 1.0)  # neutral about a third of the time
    brow_raise = np.clip(0.3 + 0.45 * _wave(rng, t, BROW_HZ), 0.0, 1.0)
    blink = _blinks(rng, t)
    values = np.round(np.stack([yaw, pitch, roll, mouth_open, smile, blink, brow_raise], axis=1), POSE_DECIMALS)
    return [Pose(*map(float, row)) for row in values]  # (num_frames, 7) -> poses
