"""The evaluation's pictures, made in a pass of their own after the metrics (issue 13): per collection the retrieval
grid (paper Fig. 8), the disentangling of one video (Fig. 7), the reenactment grid (Figs. 1 and 5) and the bar
chart of its metrics, by file name (``<collection>_retrieval.png`` and so on; `pictures` draws them).

They show what the analyses drew (`evaluate.Drawn`: the protocol's videos, the retrieval's queries and hits), so a
picture shows the figures' own frames; the reenactment grid's drivers are drawn here, from the generator of the
"pictures" analysis (`evaluate.analysis_rng`), so the metrics' draws do not depend on whether pictures are made.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from model.daegan import DAEGAN
from model.evaluation import pictures
from model.evaluation.evaluate import Drawn, Evaluation, RetrievalDraw, analysis_rng
from model.evaluation.frames import EvalCollection
from model.evaluation.protocol import VideoDraw
from model.evaluation.results import CollectionResult, CrossIdentityJudged, CrossIdentityResult, ProtocolResult
from model.evaluation.settings import EvaluationSettings
from model.warp import flow_to_colour, resize


def make_pictures(
    model: DAEGAN, collections: list[EvalCollection], evaluation: Evaluation, settings: EvaluationSettings
) -> dict[str, Image.Image]:
    """The pictures of `evaluation` of `model` on `collections` (the same list it evaluated), by file name; none
    for a collection whose protocol could not run."""
    by_name = {c.name: c for c in collections}
    out: dict[str, Image.Image] = {}
    for collection in collections:
        drawn = evaluation.drawn.get(collection.name)
        if drawn is None:
            continue
        name = collection.name
        if drawn.retrieval is not None and len(drawn.retrieval.found.queries):
            out[f"{name}_retrieval.png"] = _retrieval(drawn.retrieval, by_name, settings)
        out[f"{name}_disentangling.png"] = _disentangling(model, collection, drawn.videos[0], settings)
        out[f"{name}_reenactment.png"] = _reenactment(
            model, collection, drawn, by_name, evaluation.metrics.renderer, settings
        )
        out[f"{name}_metrics.png"] = pictures.bar_chart(_bars(evaluation.metrics.collections[name]))
    return out


def _retrieval(draw: RetrievalDraw, by_name: dict[str, EvalCollection], settings: EvaluationSettings) -> Image.Image:
    """Fig. 8: evenly spaced queries of the retrieval, each labelled with its pose values, and its top-k hits."""
    images = torch.cat([by_name[n].images for n in draw.candidates])
    found, values = draw.found, draw.values
    shown = found.queries[:: max(1, len(found.queries) // settings.picture_queries)][: settings.picture_queries]
    rows = [np.flatnonzero(found.queries == q)[0] for q in shown]
    judge = f" ({draw.judge})" if draw.judge else ""
    labels = [
        f"yaw {round(values[q, 0]):d} pitch {round(values[q, 1]):d}\nmouth {values[q, 3]:.2f}{judge}" for q in shown
    ]
    return pictures.retrieval_grid(
        images[shown], images[found.hits[rows]], row_labels=labels, cell=settings.picture_cell
    )


def _disentangling(
    model: DAEGAN, collection: EvalCollection, video: VideoDraw, settings: EvaluationSettings
) -> Image.Image:
    """Fig. 7 for the first frames of `video`, rebuilt from the face embedded from its protocol sources."""
    rows = np.flatnonzero(collection.videos == video.video)[: settings.picture_frames]
    frames = collection.images[rows]
    single = model.embed_face(frames.unsqueeze(1))  # each frame alone: (N, 1, ...) fields
    rebuilt = model.reconstruct(collection.images[video.sources], frames)
    return pictures.disentangling_picture(
        frames,
        flow_to_colour(single.flow[:, 0]),
        single.face,
        resize(rebuilt.flow_colour, model.size),
        rebuilt.reconstruction,
        cell=settings.picture_cell,
    )


def _reenactment(
    model: DAEGAN,
    collection: EvalCollection,
    drawn: Drawn,
    by_name: dict[str, EvalCollection],
    renderer: str,
    settings: EvaluationSettings,
) -> Image.Image:
    """The reenactment grid: protocol sources of distinct identities down the side, one random frame of each of
    other identities of the collections in `drawn.drivers_from` across the top."""
    seen, sources = set(), []
    for draw in drawn.videos:
        identity = collection.identities[draw.sources[0]]
        if identity not in seen:
            seen.add(identity)
            sources.append(draw)
        if len(sources) == settings.picture_sources:
            break
    pool = [by_name[n] for n in drawn.drivers_from]
    frames_of = [
        (c, who, np.flatnonzero(c.identities == who))
        for c in pool
        for who in sorted(set(c.identities))
        if who not in seen
    ]
    rng = analysis_rng(settings, "pictures", collection.name)
    picked = rng.permutation(len(frames_of))[: settings.picture_drivers]
    drivers = [c.images[rng.choice(rows)] for c, _, rows in (frames_of[i] for i in sorted(picked))]
    if not drivers:  # one identity only: its own frames drive it
        drivers = list(collection.images[drawn.videos[0].driving[: settings.picture_drivers]])
    driving = torch.stack(drivers)
    reenacted = torch.stack(
        [
            model.reenact(
                collection.images[d.sources], driving, renderer=renderer, keep_background=settings.keep_background
            ).image
            for d in sources
        ]
    )
    return pictures.reenactment_grid(
        collection.images[[d.sources[0] for d in sources]], driving, reenacted, cell=settings.picture_cell
    )


def _bars(section: CollectionResult) -> list[tuple[str, list[tuple[str, float]]]]:
    """The bar-chart panels of one collection's metrics: the model first, its baselines after."""
    panels: list[tuple[str, list[tuple[str, float]]]] = []
    p = section.protocol
    if isinstance(p, ProtocolResult):
        panels.append(("protocol SSIM (higher better)", [("model", p.ssim), ("source frame", p.ssim_source)]))
        if p.judged is not None:
            panels.append(
                (
                    "protocol AKD px (lower better)",
                    [("model", p.judged.akd.model), ("source frame", p.judged.akd.source)],
                )
            )
            panels.append(
                (
                    "protocol CSIM (higher better)",
                    [("model", p.judged.csim.model), ("same person", p.judged.csim.same_person)],
                )
            )
    c = section.cross_identity
    if isinstance(c, CrossIdentityResult):
        panels.append(
            (
                "cross-identity SSIM vs truth",
                [("model", c.ssim.model), ("source frame", c.ssim.source), ("driving frame", c.ssim.driving)],
            )
        )
        panels.append(
            (
                "cross-identity L1 (lower)",
                [("model", c.l1.model), ("source frame", c.l1.source), ("driving frame", c.l1.driving)],
            )
        )
        for region, scores in c.regions.items():
            panels.append(
                (
                    f"cross-identity {region} L1 (lower)",
                    [("model", scores.model), ("source", scores.source), ("driving", scores.driving)],
                )
            )
    if isinstance(c, CrossIdentityJudged):
        j = c.judged
        panels.append(("cross-identity AKD px (lower)", [("model", j.akd.model), ("source frame", j.akd.source)]))
        driving_csim = j.csim.driving if j.csim.driving is not None else math.nan
        panels.append(
            (
                "cross-identity CSIM (higher)",
                [("model", j.csim.model), ("same person", j.csim.same_person), ("driving frame", driving_csim)],
            )
        )
        panels.append(
            (
                "faces detected (higher)",
                [("reenactments", j.faces_detected.reenacted), ("driving frames", j.faces_detected.driving)],
            )
        )
    r = section.retrieval
    if r is not None and r.normalised and r.gap_closed is not None:
        panels.append(
            ("retrieval error, std units (lower)", [(n, r.normalised[n]) for n in ("model", "random", "oracle")])
        )
        panels.append(("retrieval gap closed (toward 1)", list(r.gap_closed.items())))
    leak = section.leakage
    if leak is not None:
        panels.append(
            (
                "identity leakage (toward chance)",
                [("model", leak.model), ("chance", leak.chance), ("oracle", leak.oracle)],
            )
        )
    probes = section.probes
    if probes is not None and probes.pose_r2_from_pose_code is not None and probes.pose_r2_from_face is not None:
        panels.append(
            (
                "pose probe mean R^2",
                [
                    ("from pose code", float(np.mean(list(probes.pose_r2_from_pose_code.values())))),
                    ("from face", float(np.mean(list(probes.pose_r2_from_face.values())))),
                ],
            )
        )
    if (
        probes is not None
        and probes.identity_accuracy_from_pose_code is not None
        and probes.identity_accuracy_from_face is not None
        and probes.identity_chance is not None
    ):
        panels.append(
            (
                "identity probe accuracy",
                [
                    ("from pose code", probes.identity_accuracy_from_pose_code),
                    ("from face", probes.identity_accuracy_from_face),
                    *(
                        []
                        if probes.identity_accuracy_from_frame is None
                        else [("from frame", probes.identity_accuracy_from_frame)]
                    ),
                    *(
                        []
                        if probes.identity_accuracy_from_ideal_face is None
                        else [("from ideal face", probes.identity_accuracy_from_ideal_face)]
                    ),
                    ("chance", probes.identity_chance),
                ],
            )
        )
    return panels
