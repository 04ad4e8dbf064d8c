"""The checkpoints that ship in checkpoints/: each loads, reenacts with the decoder it was judged with, never trained
on the people its report calls held out, and its committed report is of these very bytes (a checkpoint replaced
without re-running its evaluation leaves a report that describes other weights)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from model.checkpoint import trained_on
from model.daegan import DAEGAN

REPO = Path(__file__).resolve().parents[2]
# checkpoint -> the folder of its committed `daegan evaluate` report (README: `make evaluate ... EVAL_OUT=`)
REPORTS = {
    "daegan-small.safetensors": REPO / "docs" / "evaluation",
    "daegan-small-gpu.safetensors": REPO / "docs" / "evaluation" / "gpu",
}
HELD_OUT_ORL = [f"orl_s{n}" for n in range(31, 41)]  # configs/small.yaml data.hold_out
EVALUATION_SYNTHVOX_SEED = 1  # make evaluate's held-out SynthVox identities


def test_every_shipped_checkpoint_has_a_report() -> None:
    assert sorted(p.name for p in (REPO / "checkpoints").glob("*.safetensors")) == sorted(REPORTS)


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_shipped_checkpoint_is_the_one_its_report_judged(name: str) -> None:
    path = REPO / "checkpoints" / name
    model = DAEGAN.from_checkpoint(path)
    assert model.size == 64 and model.metadata["renderer"] == "decoder" and model.metadata["trained_with"]

    record = trained_on(model.metadata, source=path)
    assert record is not None and record.complete
    assert all(not record.trained_as(identity, None) for identity in HELD_OUT_ORL)
    assert not record.trained_as("sv0000", EVALUATION_SYNTHVOX_SEED)  # seed 0's people only
    assert not any(c.name == "cap" for c in record.collections)

    metrics = json.loads((REPORTS[name] / "metrics.json").read_text())
    assert metrics["checkpoint"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert metrics["checkpoint"]["step"] == model.metadata["step"]
