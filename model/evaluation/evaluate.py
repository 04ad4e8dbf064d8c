"""One evaluation of one model: collections in, typed metrics out (`daegan evaluate`, issue 6).

`evaluate` is what a caller runs per model: the CLI once, an ablation runner once per trained row, collecting
`Evaluation.metrics` (typed `results`, written as metrics.json by `to_json()`) into its table. The pictures are a
pass of their own (`picture_pass`) over `Evaluation.drawn`, what the analyses drew. Which analyses run depends on
each collection:

- labelled (SynthVox) collections: the paper's protocol (SSIM, L1 against the driving frame; FID), cross-identity
  reenactment against the rendered ground truth (SSIM, L1), pose retrieval against the labels, identity leakage and
  linear probes;
- real collections (no labels): the same protocol plus AKD and CSIM from dlib, cross-identity reenactment driven by
  any other identity of any collection (AKD, CSIM), and pose retrieval judged by dlib's measures.

Every collection carries its status against the checkpoint's training record (`provenance`: held out, seen in
training, partly seen, unknown) and only held-out collections make `metrics.summary` (`summary`). Every figure
stands beside its baseline (`report.METRIC_DEFINITIONS` defines each one). Random draws come from generators
seeded by (`settings.seed`, analysis, the collection's name), so one analysis's draws do not shift another's, and a
collection gets the same draws whatever is evaluated beside it.

Choices:
- AKD and CSIM count only pairs in which dlib finds the faces (`landmarks`), the missing-face rate beside them;
  AKD's model and unchanged-source figures are taken over the same pairs (driving frame, source frame and
  reenactment all with a face), so the two compare like for like.
- CSIM's reference is two frames of the source person: the source frame against the hold-out frames of its own
  video (the protocol's driving frames); the cross-identity reenactments are held to the same reference.
- Retrieval reports each parameter's gap closed and, for head pose and mouth together (`POSE_AND_MOUTH`), the gap
  closed of their normalised error: the figure real collections, judged by dlib, are held to.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from model.checkpoint import TrainingRecord, trained_on
from model.daegan import DAEGAN, to_images
from model.data.synthvox import POSE_COLUMNS
from model.evaluation import cross_identity, disentanglement, expression, protocol
from model.evaluation import landmarks as lm
from model.evaluation.fid import FIDInception, fid
from model.evaluation.frames import EvalCollection
from model.evaluation.provenance import training_status
from model.evaluation.results import (
    Baselines,
    CollectionResult,
    CrossIdentityJudged,
    CrossIdentityResult,
    LandmarkScores,
    Metrics,
    ProbeResult,
    ProtocolResult,
    ProtocolSkipped,
    RetrievalSection,
    TrainedOn,
    TrainedOnCollection,
)
from model.evaluation.settings import EvaluationSettings
from model.evaluation.summary import summarise

FID_MISSING = "FID: not computed, no Inception weights"
# spawn keys of the seeded generators (new analyses go last: the others' draws stay as they were)
ANALYSES = ("protocol", "cross", "retrieval", "probes", "pictures", "real retrieval")
POSE_AND_MOUTH = ("yaw", "pitch", "roll", "mouth_open")  # the parameters of the combined retrieval figure
IDENTITY_READER = "dlib face-recognition descriptor"  # what the identity probe reads from an image


@dataclass(frozen=True)
class RetrievalDraw:
    """A retrieval's queries and hits, and the pose values that label them, as its picture shows them."""

    candidates: list[str]  # the collections whose frames, concatenated in this order, the rows below index
    found: disentanglement.RetrievalResult  # queries and hits: rows of the candidates' frames
    values: np.ndarray  # (N, P) the candidates' pose values: labels, or dlib's measures (NaN: no face)
    judge: str  # who measured `values`: "" for the labels, else named in the picture


@dataclass(frozen=True)
class Drawn:
    """What the analyses of one collection drew, which its pictures show again (`picture_pass`)."""

    videos: list[protocol.VideoDraw]  # the protocol's
    drivers_from: list[str]  # the collections whose identities may drive its sources across identities
    retrieval: RetrievalDraw | None  # None: no retrieval ran


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate` found: the typed `metrics`, and what each collection's analyses drew by its name (none where
    the protocol could not run)."""

    metrics: Metrics
    drawn: dict[str, Drawn]


def analysis_rng(settings: EvaluationSettings, analysis: str, collection: str) -> np.random.Generator:
    """The generator of one analysis of one collection: keyed by the seed, the analysis and the collection's name."""
    name_key = int.from_bytes(hashlib.sha256(collection.encode()).digest()[:4], "little")
    return np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(ANALYSES.index(analysis), name_key)))


class Judge:
    """The landmark model with a cache of the measures of collection frames (they recur across analyses) and of the
    identity descriptors of a collection's own images (frames, ideal faces), which recur across evaluations of
    several checkpoints on one collection (the ablation's rows share one judge)."""

    def __init__(self, model: lm.LandmarkModel, *, progress: bool = True) -> None:
        self.model = model
        self.progress = progress
        self._cache: dict[tuple[str, int, bool], lm.FaceMeasure | None] = {}
        self._descriptors: dict[tuple[str, str], np.ndarray] = {}

    def frames(
        self, collection: EvalCollection, rows: np.ndarray, *, descriptor: bool = False
    ) -> list[lm.FaceMeasure | None]:
        out = []
        for row in tqdm(
            rows,
            unit="frame",
            desc=f"landmarks {collection.name}",
            leave=False,
            disable=not self.progress or len(rows) < 100,
        ):
            key = (collection.name, int(row), descriptor)
            if key not in self._cache:
                self._cache[key] = self.model.measure(to_images(collection.images[row]), descriptor=descriptor)
            out.append(self._cache[key])
        return out

    def images(
        self, images: torch.Tensor, *, descriptor: bool = False, side: int | None = None, desc: str = "landmarks"
    ) -> list[lm.FaceMeasure | None]:
        shown = tqdm(
            to_images(images), unit="image", desc=desc, leave=False, disable=not self.progress or len(images) < 100
        )
        return lm.measure_images(self.model, shown, descriptor=descriptor, side=side)

    def descriptors(self, images: torch.Tensor, *, desc: str, key: tuple[str, str] | None = None) -> np.ndarray:
        """dlib's identity descriptor of each image, `(N, 128)`; NaN rows where it finds no face. `key` (collection,
        what): the images are the collection's own, not a model's, and are read once per judge."""
        if key is not None and key in self._descriptors:
            return self._descriptors[key]
        measures = self.images(images, descriptor=True, desc=desc)
        found = np.stack([np.full(lm.DESCRIPTOR_SIZE, np.nan) if m is None else m.descriptor for m in measures])
        if key is not None:
            self._descriptors[key] = found
        return found


def make_judge(settings: EvaluationSettings, *, progress: bool = True) -> tuple[Judge | None, str | None]:
    """dlib's judge at `settings.landmark_size`, or None and the reason it cannot load."""
    try:
        return Judge(lm.LandmarkModel(size=settings.landmark_size), progress=progress), None
    except lm.LandmarksUnavailable as err:
        return None, f"landmark metrics not computed: {err}"


def evaluate(
    model: DAEGAN,
    collections: list[EvalCollection],
    settings: EvaluationSettings,
    *,
    inception: FIDInception | None = None,
    judge: Judge | None = None,
    renderer: str | None = None,
    progress: bool = True,
) -> Evaluation:
    """Evaluate `model` on `collections` (module docstring). `judge` None loads dlib (`make_judge`; noting why not
    when it cannot); `inception` None leaves FID out, saying so."""
    renderer = renderer or model.default_renderer
    num_sources = settings.num_sources or model.config.data.num_frames
    judge_note = None
    if judge is None and collections:  # real collections are judged by it; labelled ones read identity through it
        judge, judge_note = make_judge(settings, progress=progress)
    codes = {c.name: model.encode_pose(c.images).numpy() for c in collections}  # unit rows
    record = trained_on(model.metadata)
    results: dict[str, CollectionResult] = {}
    drawn: dict[str, Drawn] = {}
    for collection in tqdm(collections, unit="collection", desc="evaluate", disable=not progress):
        described = dict(
            kind="synthvox" if collection.labelled else "real",
            root=str(collection.root),
            synthvox_seed=collection.synth_seed,
            frame_size=collection.frame_size,
            frames=len(collection.frames),
            identities=int(collection.frames["identity"].nunique()),
            videos=len(set(collection.videos)),
            training=training_status(record, collection),
        )
        draws = protocol.draw_videos(
            collection,
            num_videos=settings.num_videos,
            num_driving=settings.num_driving,
            num_sources=num_sources,
            rng=analysis_rng(settings, "protocol", collection.name),
        )
        if not draws:
            results[collection.name] = CollectionResult(
                **described, protocol=ProtocolSkipped("no video has two frames or more")
            )
            continue
        same = protocol.reenact_draws(
            model, collection, draws, renderer=renderer, keep_background=settings.keep_background, progress=progress
        )
        pool = [collection] if collection.labelled else collections
        cross_draws = cross_identity.draw_drivers(
            collection,
            draws,
            pool,
            num_driving=settings.num_driving,
            rng=analysis_rng(settings, "cross", collection.name),
            per_source=math.ceil(settings.min_driver_videos / len(draws)),
        )
        sources_driven = len({d.source.sources[0] for d in cross_draws})  # source videos (each one's first row)
        cross = (
            cross_identity.reenact_cross(
                model,
                collection,
                cross_draws,
                renderer=renderer,
                keep_background=settings.keep_background,
                size=collection.frame_size if settings.real_at_frame_size and not collection.labelled else None,
                motion=settings.motion,
                progress=progress,
            )
            if cross_draws
            else None
        )
        judged: LandmarkScores | None = None
        cross_result: CrossIdentityResult | CrossIdentityJudged | None = None
        analyses: dict[str, object] = {}
        retrieval: RetrievalDraw | None = None
        if collection.labelled:
            if cross is not None:
                boxes = expression.region_boxes(collection, cross_draws, model.size)
                truth = cross_identity.compare_with_truth(cross)
                cross_result = CrossIdentityResult(
                    sources_driven,
                    len(cross.reenacted),
                    Baselines(**truth["ssim"]),
                    Baselines(**truth["l1"]),
                    expression.region_l1(cross, boxes),
                )
            analyses, retrieval = _disentanglement(model, collection, codes[collection.name], settings, judge)
        elif judge is not None:
            judged = _landmark_scores(judge, collection, same)
            if cross is not None:
                reference = (judged.csim.same_person, judged.csim.same_person_pairs)
                driver_names = np.concatenate([[d.driver.name] * len(d.driving) for d in cross_draws])
                scores, by_driver = _landmark_cross(judge, collection, cross, reference, driver_names)
                cross_result = CrossIdentityJudged(
                    sources_driven, len(cross.reenacted), sorted(by_driver), scores, by_driver, len(cross_draws)
                )
            analyses["retrieval"], retrieval = _real_retrieval(judge, collection, collections, codes, settings)
        fid_value, fid_note = _fid(inception, same)
        protocol_result = ProtocolResult(
            **protocol.protocol_counts(draws), **protocol.compare(same), fid=fid_value, fid_note=fid_note, judged=judged
        )
        results[collection.name] = CollectionResult(
            **described, protocol=protocol_result, cross_identity=cross_result, **analyses
        )
        drawn[collection.name] = Drawn(draws, [c.name for c in pool], retrieval)
    metrics = Metrics(
        renderer=renderer,
        num_sources=num_sources,
        fid="computed" if inception is not None else FID_MISSING,
        landmarks=judge_note or "dlib 68-point landmarks and face recognition",
        trained_on=_record_summary(record),
        collections=results,
        summary=summarise(results),
    )
    return Evaluation(metrics, drawn)


def _record_summary(record: TrainingRecord | None) -> TrainedOn | None:
    """What the checkpoint says it trained on, in counts (the identities themselves stay in the checkpoint)."""
    if record is None:
        return None
    return TrainedOn(
        record.complete,
        [
            TrainedOnCollection(c.name, c.path, c.synthvox_seed, len(c.trained), len(c.held_out))
            for c in record.collections
        ],
    )


def _fid(inception: FIDInception | None, same: protocol.ReenactedSet) -> tuple[float | None, str | None]:
    """FID of the protocol's reenactments, or None and why not."""
    if inception is None:
        return None, FID_MISSING
    if len(same.reenacted) < 2:
        return None, "FID: not computed, fewer than two frames"
    return fid(inception, same.driving, same.reenacted), None


def _landmark_scores(judge: Judge, collection: EvalCollection, same: protocol.ReenactedSet) -> LandmarkScores:
    """AKD and CSIM of the protocol's (same-person) reenactments, beside the unchanged source frame (AKD) and two
    frames of the source person (CSIM: the source frame against its driving frame, another frame of its video)."""
    driving = judge.frames(collection, same.driving_rows, descriptor=True)
    source = judge.frames(collection, same.source_rows, descriptor=True)
    reenacted = judge.images(same.reenacted, descriptor=True)
    return lm.reenactment_scores(driving, source, reenacted, same_person=lm.csim(source, driving))


def _landmark_cross(
    judge: Judge,
    collection: EvalCollection,
    cross: protocol.ReenactedSet,
    same_person: tuple[float, int],
    driver_names: np.ndarray,
) -> tuple[LandmarkScores, dict[str, float]]:
    """AKD to the driver and CSIM to the source of cross-identity reenactments, beside the unchanged source (AKD),
    two frames of the source person (`same_person`, the protocol's) and the driving frame (CSIM); and the faces
    found among the reenactments by the collection their driving frame came from (`driver_names`, row-aligned)."""
    driving = judge.images(cross.driving, descriptor=True)
    source = judge.frames(collection, cross.source_rows, descriptor=True)
    # reenactments drawn at the frames' size on disk: landmarks in pixels of the driving frame, for AKD
    reenacted = judge.images(cross.reenacted, descriptor=True, side=cross.driving.shape[-1])
    scores = lm.reenactment_scores(driving, source, reenacted, same_person=same_person)
    driving_csim, driving_pairs = lm.csim(source, driving)
    by_driver = {
        str(name): lm.detected_share([m for m, n in zip(reenacted, driver_names, strict=True) if n == name])
        for name in sorted(set(driver_names))
    }
    return replace(scores, csim=replace(scores.csim, driving=driving_csim, driving_pairs=driving_pairs)), by_driver


def _queries(n: int, settings: EvaluationSettings, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=min(settings.max_queries, n), replace=False))


def _retrieval_section(
    found: disentanglement.RetrievalResult, columns: tuple[str, ...], k: int, **judged: object
) -> RetrievalSection:
    """The retrieval figures of `found` by parameter name; `judged`: dlib's share on real collections."""
    if not found.errors:
        return RetrievalSection(k=k, queries=0, parameters=list(columns), note="no query has k candidates", **judged)
    per_parameter = np.asarray(disentanglement.gap_closed(found))  # (P,)
    return RetrievalSection(
        k=k,
        queries=len(found.queries),
        parameters=list(columns),
        error={name: dict(zip(columns, map(float, e))) for name, e in found.errors.items()},
        normalised=found.normalised,
        gap_closed=dict(zip(columns, map(float, per_parameter))),
        gap_closed_normalised=float(disentanglement.gap_closed(found, list(range(len(columns))))),
        gap_closed_pose_and_mouth=float(disentanglement.gap_closed(found, [columns.index(c) for c in POSE_AND_MOUTH])),
        **judged,
    )


def _disentanglement(
    model: DAEGAN, collection: EvalCollection, codes: np.ndarray, settings: EvaluationSettings, judge: Judge | None
) -> tuple[dict[str, object], RetrievalDraw]:
    """Retrieval against the labels, leakage and probes of a labelled collection, by `CollectionResult` field, and
    the retrieval's draw. The identity probe reads images through the `judge`'s identity descriptor: a pixel probe
    fitted on one video of a person reads that video's backdrop, shirt, light and framing, not the person (on
    per-video scenes it named SynthVox's own frontal render of each person 24% of the time, the frames' descriptors
    95%); without a judge only the pose code's identity is probed."""
    rng = analysis_rng(settings, "retrieval", collection.name)
    poses, identities, videos = collection.poses, collection.identities, collection.videos
    queries = _queries(len(codes), settings, rng)
    found = disentanglement.retrieval(codes, poses, identities, queries, k=settings.k, rng=rng)
    out: dict[str, object] = {
        "retrieval": _retrieval_section(found, POSE_COLUMNS, settings.k),
        "leakage": disentanglement.leakage(codes, poses, identities, videos, queries, k=settings.k),
    }
    # the embedded face of each frame alone, beside the frames themselves (the person as the video shows them)
    # and the ideal embedded face (what a face embedder should give: `EvalCollection.ideal_faces`)
    images = {
        "face": model.embed_face(collection.images.unsqueeze(1)).face,  # (N, 3, S, S)
        "frame": collection.images,
        "ideal_face": collection.ideal_faces(),
    }
    pixels = {name: F.adaptive_avg_pool2d(x, settings.face_probe_size).flatten(1).numpy() for name, x in images.items()}
    identity: dict[str, np.ndarray] = {"pose_code": codes}
    if judge is not None:
        identity |= {  # the frames and ideal faces are the collection's own: read once per judge
            name: judge.descriptors(
                x, desc=f"identity {name} {collection.name}", key=None if name == "face" else (collection.name, name)
            )
            for name, x in images.items()
        }
    readable = {name: float(np.isfinite(x).all(axis=1).mean()) for name, x in identity.items() if name != "pose_code"}
    out["probes"] = ProbeResult(
        identity_reader=None if judge is None else IDENTITY_READER,
        identity_readable=readable or None,
        **disentanglement.probes(
            {"pose_code": codes, **pixels},
            identity,
            poses,
            POSE_COLUMNS,
            identities,
            videos,
            alphas=settings.probe_alphas,
            folds=settings.probe_folds,
            test_fraction=settings.probe_test_fraction,
            c=settings.probe_c,
            max_iter=settings.probe_max_iter,
            rng=analysis_rng(settings, "probes", collection.name),
        ),
    )
    return out, RetrievalDraw([collection.name], found, poses, judge="")


def _real_retrieval(
    judge: Judge,
    collection: EvalCollection,
    collections: list[EvalCollection],
    codes: dict[str, np.ndarray],
    settings: EvaluationSettings,
) -> tuple[RetrievalSection, RetrievalDraw | None]:
    """Queries from `collection`, hits among every other identity of every collection, judged by dlib; and the
    retrieval's draw (None: no other identity)."""
    rng = analysis_rng(settings, "retrieval", collection.name)
    own = len(collection.frames)
    queries = _queries(own, settings, rng)
    others = [c for c in collections if c is not collection]
    all_codes = np.concatenate([codes[collection.name], *(codes[c.name] for c in others)])
    identities = np.concatenate([collection.identities, *(c.identities for c in others)])
    if not (identities != identities[0]).any():
        return RetrievalSection(note="one identity only: no other identity to retrieve"), None
    several = len(set(collection.identities)) > 1  # then this collection's other identities are candidates too
    measured = np.arange(own) if several else queries
    values = np.full((len(all_codes), len(lm.MEASURE_COLUMNS)), np.nan)  # NaN: not a query or hit (no face)
    values[measured] = lm.pose_values(judge.frames(collection, measured))
    offset = own
    for c in others:
        values[offset : offset + len(c.frames)] = lm.pose_values(judge.frames(c, np.arange(len(c.frames))))
        offset += len(c.frames)
    found = disentanglement.retrieval(all_codes, values, identities, queries, k=settings.k, rng=rng)
    names = np.concatenate([np.full(own, collection.name), *(np.full(len(c.frames), c.name) for c in others)])
    real = np.concatenate([np.ones(own, bool), *(np.full(len(c.frames), not c.labelled) for c in others)])
    faced = ~np.isnan(values[:, 0])
    if not several:
        faced[:own] = False  # the query's own identity: never a candidate
    real_only = None
    if (faced & ~real).any() and (faced & real).any():  # SynthVox frames among the candidates: the real ones alone
        real_found = disentanglement.retrieval(
            all_codes,
            values,
            identities,
            queries,
            k=settings.k,
            rng=analysis_rng(settings, "real retrieval", collection.name),
            candidates=real,
        )
        real_only = _retrieval_section(
            real_found,
            lm.MEASURE_COLUMNS,
            settings.k,
            judge="dlib",
            candidates=int((faced & real).sum()),
            candidates_from=sorted(set(names[faced & real])),
        )
    section = _retrieval_section(
        found,
        lm.MEASURE_COLUMNS,
        settings.k,
        judge="dlib",
        faces_found_queries=float(np.mean(~np.isnan(values[queries, 0]))),
        candidates=int(faced.sum()),
        candidates_from=sorted({c.name for c in others} | ({collection.name} if several else set())),
        hits_from={name: float(np.mean(names[found.hits] == name)) for name in sorted(set(names[faced]))}
        if len(found.hits)
        else None,
        candidates_by={name: int((names[faced] == name).sum()) for name in sorted(set(names[faced]))},
        real_only=real_only,
    )
    return section, RetrievalDraw([collection.name, *(c.name for c in others)], found, values, judge="dlib")
