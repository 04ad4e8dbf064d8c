"""metrics.json as one typed document: who was evaluated with what (`EvaluationHeader`), what was found
(`results.Metrics`), the pictures' file names and the metric definitions, as the file orders its keys; report.md
renders it (`report`).

Choices:
- The file is strict JSON (`clean`): NaN and infinities become null, numpy scalars Python numbers. Read back with
  `MetricsFile.from_json`, a null figure is None, or NaN under a key left out while None (`results`).
- The header's settings are `EvaluationSettings` and written as its `to_dict()`; the checkpoint's metadata values
  (step, stage) stay the text the checkpoint stores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Self

from model.evaluation.results import JSONResult, Metrics, optional
from model.evaluation.settings import EvaluationSettings


def clean(document: dict[str, object]) -> dict[str, Any]:
    """`document` made strict JSON: NaN and infinities become null; numpy scalars become Python numbers."""
    return {str(k): _clean(v) for k, v in document.items()}


def _clean(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class CheckpointInfo(JSONResult):
    """Who was evaluated: the file, its hash and sizes, and the training provenance its metadata carries."""

    path: str
    sha256: str
    size: int  # frame side in pixels
    pose_dim: int
    step: str | None = optional()  # metadata as the checkpoint stores it; left out where it says nothing
    stage: str | None = optional()
    trained_with: str | None = optional()


@dataclass(frozen=True)
class EvaluationHeader(JSONResult):
    """How an evaluation was made: metrics.json's first keys."""

    posedex_version: str
    checkpoint: CheckpointInfo
    settings: EvaluationSettings
    fid_weights: str | None  # the Inception weights FID was computed with; None: not computed
    command: str  # the command line that regenerates the report

    def to_json(self) -> dict[str, object]:
        return super().to_json() | {"settings": self.settings.to_dict()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return replace(super().from_json(data), settings=EvaluationSettings(**data["settings"]))


@dataclass(frozen=True)
class MetricsFile(JSONResult):
    """Everything metrics.json holds; its JSON is the header's keys, then the metrics', then these two."""

    header: EvaluationHeader
    metrics: Metrics
    pictures: list[str]  # file names beside metrics.json, sorted
    definitions: dict[str, str]  # metric -> meaning (`report.METRIC_DEFINITIONS` when written)

    def to_json(self) -> dict[str, object]:
        return {
            **self.header.to_json(),
            **self.metrics.to_json(),
            "pictures": self.pictures,
            "definitions": self.definitions,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(EvaluationHeader.from_json(data), Metrics.from_json(data), data["pictures"], data["definitions"])
