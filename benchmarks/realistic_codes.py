"""Pose codes that look like real ones, at any count: the demo index's codes grown along each video's trajectory.

Benchmarks at 1M and 10M need codes shaped like the shipped model's (clustered along smooth per-video paths on the
sphere, not uniform noise, which is the hardest case for approximate search and unlike any real index). Source:
the 2,424 codes of `demo/index` (the shipped `small` checkpoint over SynthVox and the real carphone clip: 25
identities, 73 videos), read with `indexer.store.Store` (no model needed). How a set of `n` codes is made
(`grow`), exactly:

1. Each video's codes, in frame order, give its consecutive pairs (a_t, a_t+1): 2,351 pairs in all.
2. The set is split into "copies": copy c of video v is that video's path shifted by a fixed offset o_(v,c)
   ~ N(0, `COPY_SIGMA`^2 I) (norm ~0.16 in d=64; half the median distance of a code to its nearest other code in
   the demo, 0.26; the median step between consecutive frames is 0.61). A copy stands for another person making
   a similar movement: copies are neither identical nor rotated, just displaced. There are
   ceil(n / number of pairs) copies of each video; every sample draws its copy uniformly.
3. A sample: a video with probability proportional to its number of pairs, one of its copies, one of its pairs
   uniformly, a weight w ~ U(0, 1); the code is normalise((1 - w) a_t + w a_t+1 + o_(v,c) + e), e ~ N(0,
   `NOISE_SIGMA`^2 I) (norm ~0.08).
4. Queries are drawn by the same process with another seed's stream (same copies, new pairs, weights and noise):
   held out, since a continuous draw repeats a base code with probability zero.

Everything is seeded; `grow` works in chunks so 10M codes (2.56 GB of float32) need little more than the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEMO_INDEX = Path(__file__).resolve().parent.parent / "demo" / "index"
COPY_SIGMA = 0.02  # per dimension; norm ~0.16 at d=64
NOISE_SIGMA = 0.01  # per dimension; norm ~0.08 at d=64
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Trajectories:
    """The source codes as consecutive pairs: start[i] -> end[i] of video video[i]."""

    start: np.ndarray  # (P, d) float32, unit rows
    end: np.ndarray  # (P, d) float32, unit rows
    video: np.ndarray  # (P,) int64, video number of each pair
    num_videos: int
    num_codes: int


def load_trajectories(index_dir: Path = DEMO_INDEX) -> Trajectories:
    """Every video's consecutive code pairs from the index at `index_dir`, videos in (identity, video) order."""
    from indexer.store import Store

    with Store.open(index_dir, readonly=True) as store:
        ids = store.ids()
        codes = store.vectors(ids)  # (N, d)
        rows = store.get(ids)
    rows = rows.assign(position=np.arange(len(rows))).sort_values(["identity", "video", "frame"])
    starts, ends, videos = [], [], []
    for v, (_, group) in enumerate(rows.groupby(["identity", "video"], sort=True)):
        path = codes[group["position"].to_numpy()]  # (T, d) in frame order
        starts.append(path[:-1])
        ends.append(path[1:])
        videos.append(np.full(len(path) - 1, v, np.int64))
    return Trajectories(
        start=np.concatenate(starts),
        end=np.concatenate(ends),
        video=np.concatenate(videos),
        num_videos=v + 1,
        num_codes=len(codes),
    )


def grow(traj: Trajectories, n: int, *, seed: int = 0, stream: int = 0, copies: int | None = None) -> np.ndarray:
    """`n` unit float32 codes (n, d) sampled along `traj` as the module docstring says.

    `seed` fixes the copies' offsets; `stream` the draws (0: the base set, 1: queries). `copies` per video
    defaults to ceil(n / number of pairs); give the base set's count when drawing queries for it.
    """
    num_pairs, dim = traj.start.shape
    copies = copies or max(1, -(-n // num_pairs))
    offsets = np.random.default_rng([seed, 0]).normal(0, COPY_SIGMA, (traj.num_videos, copies, dim))
    offsets = offsets.astype(np.float32)  # (V, C, d)
    rng = np.random.default_rng([seed, 1 + stream])
    out = np.empty((n, dim), np.float32)
    for lo in range(0, n, _CHUNK):
        m = min(_CHUNK, n - lo)
        pair = rng.integers(0, num_pairs, m)  # uniform over pairs = videos weighted by their pair counts
        copy = rng.integers(0, copies, m)
        w = rng.random(m, dtype=np.float32)[:, None]  # (m, 1)
        x = (1 - w) * traj.start[pair] + w * traj.end[pair]  # (m, d)
        x += offsets[traj.video[pair], copy]
        x += rng.normal(0, NOISE_SIGMA, (m, dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[lo : lo + m] = x
    return out


def copies_for(traj: Trajectories, n: int) -> int:
    """How many copies of each video a base set of `n` codes uses (pass it to `grow` for its queries)."""
    return max(1, -(-n // len(traj.start)))


def describe(traj: Trajectories, n: int) -> str:
    """One line saying how a set of `n` codes was made (printed beside the figures)."""
    return (
        f"codes: {n:,} grown from the {traj.num_codes:,} real codes of demo/index ({traj.num_videos} videos, "
        f"{len(traj.start):,} consecutive pairs) by interpolating a random consecutive pair, adding a per-copy "
        f"offset (sigma {COPY_SIGMA}/dim, {copies_for(traj, n)} copies per video) and noise (sigma "
        f"{NOISE_SIGMA}/dim), renormalised; queries drawn the same way from another stream (held out)"
    )
