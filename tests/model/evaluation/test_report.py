"""metrics.json read back as the typed document (`metrics_file`, `results`), and report.md rendered from it."""

from __future__ import annotations

import json
import math
from pathlib import Path

from model.evaluation.metrics_file import MetricsFile, clean
from model.evaluation.report import _judged_rows, render_markdown
from model.evaluation.results import (
    AKDScores,
    CrossIdentityJudged,
    CSIMScores,
    FacesDetected,
    LandmarkScores,
    MissingFaceRate,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "evaluation"


def test_the_shipped_metrics_json_reads_back_whole_and_renders_the_shipped_report() -> None:
    stored = (DOCS / "metrics.json").read_text()
    document = MetricsFile.from_json(json.loads(stored))
    assert json.dumps(document.to_json(), indent=2, allow_nan=False) + "\n" == stored
    assert render_markdown(document) + "\n" == (DOCS / "report.md").read_text()


def test_a_figure_that_is_not_a_number_reads_back_as_one() -> None:
    # a driving-frame CSIM over no pairs is NaN: metrics.json writes null under its key, which would be left out
    # were it None, so it reads back as NaN and the report says n/a rather than leaving the figure out
    judged = LandmarkScores(
        FacesDetected(0.5, 1.0, 1.0),
        MissingFaceRate(0.5, 0.0),
        AKDScores(3.0, 4.0, 2, 4.5, 3),
        CSIMScores(0.9, 2, 0.95, 3, 0.9 / 0.95, driving=math.nan, driving_pairs=0),
    )
    stored = clean(CrossIdentityJudged(2, 4, ["other"], judged, {"other": 0.5}).to_json())
    assert stored["csim"]["driving"] is None
    read = CrossIdentityJudged.from_json(stored)
    assert read.faces_detected_by_driver == {"other": 0.5}
    assert read.judged.csim.driving is not None and math.isnan(read.judged.csim.driving)
    assert clean(read.to_json()) == stored
    assert "n/a (driving frame, another person, 0 pairs)" in _judged_rows(read.judged)[-1]
