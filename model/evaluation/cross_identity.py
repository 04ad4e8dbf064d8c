"""Reenactment across identities: a source person driven by another person's frames (paper Fig. 5, "inter-identity").

On SynthVox the answer is known exactly: the source identity rendered in the driving frame's labelled pose, in the
scene of the source's own video, is the target, and the reenactment is compared with it by SSIM and L1, next to two
baselines, the unchanged source frame (right person, wrong pose) and the driving frame (right pose, wrong person).
On real frames there is no target; the landmark model judges the same reenactments (AKD against the driver, CSIM
against the source; `landmarks`).

Choices:
- Each protocol video (its sources drawn as in `protocol.draw_videos`) is driven by `per_source` videos of other
  identities drawn at random without repeats, `num_driving` frames in all split evenly among them, each share drawn
  at random (fewer when a video is shorter). One video per source, the paper's "driven by another identity", when
  the collection has enough source videos; a collection with few (ORL s31-s40: 10) would otherwise rest its
  judged figures on as few driver videos, and one driver that loses faces would move its faces-found line by a tenth
  (`EvaluationSettings.min_driver_videos` sets `per_source`).
- SynthVox drivers come from the same collection (their poses are labels of the same renderer); real sources may
  be driven by any other identity of any collection evaluated with them.
- The ground truth is rendered at the collection's own frame size and resized like the frames, so target and
  frames went through the same resampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from model.daegan import DAEGAN, Motion, images_to_frames
from model.evaluation.frames import EvalCollection
from model.evaluation.protocol import ReenactedSet, VideoDraw
from model.evaluation.similarity import l1, ssim


@dataclass(frozen=True)
class CrossDraw:
    """A source video's frames driven by another identity's frames."""

    source: VideoDraw  # the protocol's draw: its `sources` feed the face embedder
    driver: EvalCollection  # where the driving frames are
    driving: np.ndarray  # (M,) rows of `driver`


def draw_drivers(
    collection: EvalCollection,
    draws: list[VideoDraw],
    pool: list[EvalCollection],
    *,
    num_driving: int,
    rng: np.random.Generator,
    per_source: int = 1,
) -> list[CrossDraw]:
    """For each source video, `per_source` random videos of other identities from `pool` (fewer when fewer exist),
    one `CrossDraw` each, with `num_driving` driving frames split among them."""
    videos = [(c, name, np.flatnonzero(c.videos == name)) for c in pool for name in sorted(set(c.videos))]
    identities = {id(c): c.identities for c in pool}
    result = []
    for draw in draws:
        own = collection.identities[draw.sources[0]]
        others = [v for v in videos if identities[id(v[0])][v[2][0]] != own]
        if not others:
            continue
        if per_source == 1:  # the draw as it was before several drivers: collections with many sources keep theirs
            picked = [others[rng.integers(len(others))]]
        else:
            picked = [others[i] for i in rng.choice(len(others), size=min(per_source, len(others)), replace=False)]
        shares = np.diff(np.linspace(0, num_driving, len(picked) + 1).round().astype(int))  # even, summing to M
        for (driver, _, rows), share in zip(picked, shares):
            if share > 0:
                chosen = np.sort(rng.choice(rows, size=min(int(share), len(rows)), replace=False))
                result.append(CrossDraw(draw, driver, chosen))
    return result


def reenact_cross(
    model: DAEGAN,
    collection: EvalCollection,
    draws: list[CrossDraw],
    *,
    renderer: str,
    keep_background: bool = True,
    size: int | None = None,
    motion: Motion = "absolute",
    progress: bool = True,
) -> ReenactedSet:
    """Reenact every cross draw (`keep_background` as `DAEGAN.reenact` takes it). `target` is the SynthVox ground
    truth for a labelled collection, else the driving frame (a placeholder: real frames have no target). `size`:
    draw the reenactments at that size from the source frames as on disk (`DAEGAN.draw`), not at the model's.
    `motion` "relative": each driving code's departure from the mean code of its whole video, on the source frames'
    mean code (`daegan.relative_pose`); the SynthVox target stays the driver's absolute pose."""
    parts, targets = [], []
    for draw in tqdm(draws, unit="video", desc=f"cross-identity {collection.name}", disable=not progress, leave=False):
        driving = draw.driver.images[draw.driving]
        rows = draw.source.sources
        sources = [collection.raw[row] for row in rows] if size else collection.images[rows]
        driving_mean = None
        if motion == "relative":  # the mean code of the driver's whole video, not only of the frames drawn
            video = np.flatnonzero(draw.driver.videos == draw.driver.videos[draw.driving[0]])
            driving_mean = model.encode_pose(draw.driver.images[video], normalize=False).mean(dim=0)
        out = model.reenact(
            sources,
            driving,
            renderer=renderer,
            keep_background=keep_background,
            size=size,
            motion=motion,
            driving_mean=driving_mean,
        )
        parts.append(out.image)
        if collection.labelled:
            source = collection.frames.loc[draw.source.sources[0]]
            truth = collection.render_truth(
                str(source["identity"]), str(source["video"]), draw.driver.poses[draw.driving]
            )
            targets.append(images_to_frames(truth, model.size))
        else:
            targets.append(driving)
    source_rows = np.concatenate([np.full(len(d.driving), d.source.sources[0]) for d in draws])
    driving = torch.cat([d.driver.images[d.driving] for d in draws])
    return ReenactedSet(
        torch.cat(parts),
        torch.cat(targets),
        collection.images[source_rows],
        driving,
        source_rows,
        np.concatenate([d.driving for d in draws]),
    )


def compare_with_truth(result: ReenactedSet) -> dict[str, dict[str, float]]:
    """SSIM and L1 against the rendered ground truth: the model, the unchanged source frame, the driving frame."""
    out: dict[str, dict[str, float]] = {}
    for name, metric in (("ssim", ssim), ("l1", l1)):
        out[name] = {
            "model": float(metric(result.reenacted, result.target).mean()),
            "source": float(metric(result.source, result.target).mean()),
            "driving": float(metric(result.driving, result.target).mean()),
        }
    return out
