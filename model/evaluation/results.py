"""What an evaluation found, typed: one frozen dataclass per analysis, and `Metrics` that holds them per collection
(issue 13, "Evaluation returns typed results"). `evaluate` builds them, `summary`, the bar charts and report.md
read their fields, `to_json()` writes them as metrics.json stores them and `from_json()` reads them back.

metrics.json is the contract that report.md, the ablation's table and the docs' figures are read from, so each
dataclass's fields are its JSON keys in their order. Choices:
- A field made with `optional()` is left out of the JSON while it is None, as the dict it replaces left the key out
  (a probe that could not run, retrieval's note); a plain field that is None is written as null (FID not computed).
- A null under an `optional()` key reads back as NaN: None would have been left out, so it was a non-finite
  figure that metrics.json writes as null (`report`); read back, it writes the same JSON and renders as "n/a".
- Where a field holds one of several results (the protocol run or skipped, cross-identity against the truth or
  judged by dlib), each class names in `TOLD_BY` a key that only its JSON holds.
- The dlib scores (`LandmarkScores`) are one dataclass that the protocol and the real cross-identity sections each
  carry and write flat into their own JSON object, where the dict they replace merged them.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Self, get_args, get_origin, get_type_hints

_OMIT_NONE = {"omit_none": True}


def optional() -> Any:
    """A field that defaults to None and is left out of the JSON while None (module docstring)."""
    return field(default=None, metadata=_OMIT_NONE)


def _json(value: object) -> object:
    if isinstance(value, JSONResult):
        return value.to_json()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return value


def _from_json(hint: Any, value: Any) -> Any:
    """`value` as metrics.json holds it, made the type `hint` names: results, and lists, tuples and dicts of them."""
    if value is None:
        return None
    origin, args = get_origin(hint), get_args(hint)
    if origin is types.UnionType:
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) > 1:
            kinds = [k for k in kinds if k.TOLD_BY in value]
        return _from_json(kinds[0], value)
    if isinstance(hint, type) and issubclass(hint, JSONResult):
        return hint.from_json(value)
    if origin is dict:
        return {k: _from_json(args[1], v) for k, v in value.items()}
    if origin is list:
        return [_from_json(args[0], v) for v in value]
    if origin is tuple:
        return tuple(_from_json(a, v) for a, v in zip(args, value))
    return value


@dataclass(frozen=True)
class JSONResult:
    """A result written as metrics.json stores it: its fields in order, `optional()` ones while set."""

    TOLD_BY: ClassVar[str] = ""  # a key only this class's JSON holds, where a field may hold one of several

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.metadata.get("omit_none"):
                continue
            out[f.name] = _json(value)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """The result that `to_json` wrote as `data` (after metrics.json's cleaning: module docstring)."""
        hints = get_type_hints(cls)
        values = {}
        for f in fields(cls):
            if f.name not in data:
                continue  # left out while None
            value = data[f.name]
            if value is None and f.metadata.get("omit_none"):
                value = math.nan
            values[f.name] = _from_json(hints[f.name], value)
        return cls(**values)


@dataclass(frozen=True)
class Baselines(JSONResult):
    """One figure of the model beside the unchanged source frame and the driving frame (cross-identity truth)."""

    model: float
    source: float
    driving: float


@dataclass(frozen=True)
class RegionL1(JSONResult):
    """L1 against the ground truth inside one expression region (`expression`), over `pairs` pairs."""

    model: float
    source: float
    driving: float
    pairs: int


@dataclass(frozen=True)
class FacesDetected(JSONResult):
    """Share of images in which dlib finds a face."""

    reenacted: float
    driving: float
    source: float


@dataclass(frozen=True)
class MissingFaceRate(JSONResult):
    """Share of pairs whose driving frame has a face and whose reenactment (or source frame) has none."""

    model: float
    source: float


@dataclass(frozen=True)
class AKDScores(JSONResult):
    """AKD to the driver over the pairs with all three faces, and the source frame's over its own pairs."""

    model: float
    source: float
    pairs: int
    source_all: float
    source_all_pairs: int


@dataclass(frozen=True)
class CSIMScores(JSONResult):
    """CSIM of the reenactment to the source beside two frames of the source person; the driving frame's (another
    person) only in cross-identity reenactment."""

    model: float
    pairs: int
    same_person: float
    same_person_pairs: int
    ratio: float
    driving: float | None = optional()
    driving_pairs: int | None = optional()


@dataclass(frozen=True)
class LandmarkScores(JSONResult):
    """dlib's verdict on reenactments (`landmarks.reenactment_scores`)."""

    faces_detected: FacesDetected
    missing_face_rate: MissingFaceRate
    akd: AKDScores
    csim: CSIMScores


@dataclass(frozen=True)
class TrainingStatus(JSONResult):
    """A collection held out or seen in training (`provenance.training_status`)."""

    status: str  # one of provenance's HELD_OUT, SEEN, PARTLY_SEEN, UNKNOWN
    label: str  # the report's words
    identities: int  # evaluated
    seen: int  # of them trained on
    left_out: list[str]  # seen identities not evaluated
    trained_as: list[str]  # the training collections that hold the seen ones


@dataclass(frozen=True)
class ProtocolSkipped(JSONResult):
    """The paper's protocol could not run: no video has two frames."""

    TOLD_BY = "note"
    note: str

    def to_json(self) -> dict[str, object]:
        return {"videos": 0, "note": self.note}


@dataclass(frozen=True)
class ProtocolResult(JSONResult):
    """The paper's protocol (`protocol`): counts used, SSIM and L1 beside the unchanged source, FID; on real frames
    dlib's scores too, written into the same JSON object."""

    videos: int
    driving_frames: int
    driving_per_video: tuple[int, int]  # least and most
    sources_per_video: tuple[int, int]
    ssim: float
    ssim_source: float
    l1: float
    l1_source: float
    fid: float | None  # None: not computed, `fid_note` says why
    fid_note: str | None
    judged: LandmarkScores | None = None

    TOLD_BY = "ssim"

    def to_json(self) -> dict[str, object]:
        out = super().to_json()
        out.pop("judged")
        return out | (self.judged.to_json() if self.judged is not None else {})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        judged = LandmarkScores.from_json(data) if "akd" in data else None
        return replace(super().from_json(data), judged=judged)


@dataclass(frozen=True)
class CrossIdentityResult(JSONResult):
    """Cross-identity reenactment against SynthVox's rendered ground truth (`cross_identity`, `expression`)."""

    TOLD_BY = "regions"
    videos: int
    frames: int
    ssim: Baselines
    l1: Baselines
    regions: dict[str, RegionL1]


@dataclass(frozen=True)
class CrossIdentityJudged(JSONResult):
    """Cross-identity reenactment of real frames, judged by dlib (no ground truth), written flat like the protocol."""

    videos: int
    frames: int
    drivers_from: list[str]  # the collections the driving frames came from
    judged: LandmarkScores
    # share of the reenactments in which dlib finds a face, by the collection of their driving frames: whose motion
    # costs the face (reports written before it have none)
    faces_detected_by_driver: dict[str, float] | None = None
    driver_videos: int | None = optional()  # driving videos in all (`cross_identity.draw_drivers`; older: = videos)

    TOLD_BY = "drivers_from"

    def to_json(self) -> dict[str, object]:
        by_driver = (
            {} if self.faces_detected_by_driver is None else {"faces_detected_by_driver": self.faces_detected_by_driver}
        )
        return {
            "videos": self.videos,
            "frames": self.frames,
            **({} if self.driver_videos is None else {"driver_videos": self.driver_videos}),
            "drivers_from": self.drivers_from,
            **self.judged.to_json(),
            **by_driver,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(
            data["videos"],
            data["frames"],
            data["drivers_from"],
            LandmarkScores.from_json(data),
            data.get("faces_detected_by_driver"),
            data.get("driver_videos"),
        )


@dataclass(frozen=True)
class RetrievalSection(JSONResult):
    """Pose retrieval across identities (`disentanglement.retrieval`): errors of the model's top-k beside random
    hits and the oracle, and the gaps closed; `note` instead of figures where no query could run. Real collections
    add dlib's share: `judge` and the candidates."""

    k: int | None = optional()
    queries: int | None = optional()
    parameters: list[str] | None = optional()
    note: str | None = optional()
    error: dict[str, dict[str, float]] | None = optional()  # model / random / oracle -> parameter -> error
    normalised: dict[str, float] | None = optional()  # model / random / oracle -> error in std units
    gap_closed: dict[str, float] | None = optional()  # parameter -> gap closed
    gap_closed_normalised: float | None = optional()
    gap_closed_pose_and_mouth: float | None = optional()
    judge: str | None = optional()
    faces_found_queries: float | None = optional()
    candidates: int | None = optional()
    candidates_from: list[str] | None = optional()
    # real queries: the collections the model's hits came from (share of all hits) beside the candidates' counts,
    # and the same retrieval among real candidates only, where SynthVox frames were candidates too: a real face's
    # judged pose and mouth lie nearer other real faces' than cartoon heads', so the hits' domain alone closes part
    # of the gap (`real_only` says how much is left when every candidate is a real face)
    hits_from: dict[str, float] | None = optional()
    candidates_by: dict[str, int] | None = optional()
    real_only: RetrievalSection | None = optional()


@dataclass(frozen=True)
class LeakageResult(JSONResult):
    """Identity leakage of the unfiltered top-k (`disentanglement.leakage`)."""

    model: float
    chance: float
    oracle: float
    queries: int


@dataclass(frozen=True)
class ProbeResult(JSONResult):
    """Linear probes of pose and identity from the pose code, the embedded face, the frames themselves and the
    ideal embedded face (`disentanglement.probes`); a probe that could not run (one identity, no identity with two
    videos) is None. The frames' figures are what a probe reads from the frames themselves; the ideal face's
    (SynthVox's render of the person frontal and neutral in the video's scene) what a face embedder should give
    it. None in reports written before them."""

    pose_identities: dict[str, int] | None = optional()  # identities fitted ("train") and held out ("test")
    pose_r2_from_pose_code: dict[str, float] | None = optional()
    pose_r2_from_face: dict[str, float] | None = optional()
    pose_r2_from_frame: dict[str, float] | None = optional()
    pose_r2_from_ideal_face: dict[str, float] | None = optional()
    identity_chance: float | None = optional()
    identity_classes: int | None = optional()
    identity_accuracy_from_pose_code: float | None = optional()
    identity_accuracy_from_face: float | None = optional()
    identity_accuracy_from_frame: float | None = optional()
    identity_accuracy_from_ideal_face: float | None = optional()
    # what the identity probe read from the images (face, frame, ideal face): None in reports written when it read
    # their pooled pixels (`face_probe_size`), as the pose probes still do
    identity_reader: str | None = optional()
    identity_readable: dict[str, float] | None = (
        optional()
    )  # per image kind, the share in which the reader found a face


@dataclass(frozen=True)
class CollectionResult(JSONResult):
    """Everything measured on one collection; the analyses a collection's kind does not run are None."""

    kind: str  # "synthvox" or "real"
    root: str
    synthvox_seed: int | None
    frame_size: int
    frames: int
    identities: int
    videos: int
    training: TrainingStatus
    protocol: ProtocolResult | ProtocolSkipped
    cross_identity: CrossIdentityResult | CrossIdentityJudged | None = optional()
    retrieval: RetrievalSection | None = optional()
    leakage: LeakageResult | None = optional()
    probes: ProbeResult | None = optional()


@dataclass(frozen=True)
class SummaryRow(JSONResult):
    """One headline figure of a held-out collection beside its baseline and target (`summary`)."""

    collection: str
    figure: str
    value: float | None
    baseline: str  # the baseline in words
    baseline_value: float | None
    target: str  # the target in words; "" where the issues set none
    met: bool | None  # None: the figure or its threshold could not be computed


@dataclass(frozen=True)
class Summary(JSONResult):
    """The held-out collections' headline figures; the other collections by name with their status label."""

    held_out: list[str]
    left_out_of_summary: dict[str, str]
    figures: list[SummaryRow]


@dataclass(frozen=True)
class TrainedOnCollection(JSONResult):
    """One collection of the checkpoint's training record, in counts (the identities stay in the checkpoint)."""

    name: str
    path: str
    synthvox_seed: int | None
    trained: int  # identities trained on
    held_out: int  # identities the split held out


@dataclass(frozen=True)
class TrainedOn(JSONResult):
    """What the checkpoint says it trained on (`model.checkpoint.TrainingRecord`), in counts."""

    complete: bool  # False: it started from weights whose checkpoint does not say what they trained on
    collections: list[TrainedOnCollection]


@dataclass(frozen=True)
class Metrics(JSONResult):
    """One model's evaluation as metrics.json stores it, less the header the caller adds (checkpoint, settings)."""

    renderer: str
    num_sources: int
    fid: str  # "computed" or why not
    landmarks: str  # what judged real frames, or why nothing did
    trained_on: TrainedOn | None  # None: the checkpoint does not say
    collections: dict[str, CollectionResult]
    summary: Summary
