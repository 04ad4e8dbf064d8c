"""Checkpoints: safetensors + config metadata, exact round trip, atomic writes, clear errors; nothing unpickled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from model.checkpoint import file_sha256, load_checkpoint, save_checkpoint
from model.config import load_config
from model.data.errors import DataError
from model.pose_embedder import PoseEmbedder


def test_round_trip_restores_weights_and_config(tmp_path: Path) -> None:
    config = load_config("tiny", {"model.pose_dim": 12})
    net = PoseEmbedder.from_config(config.model, size=config.data.size)
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, {"pose_embedder": net}, config, metadata={"step": "7"})
    loaded = load_checkpoint(path)
    assert loaded.config == config and loaded.metadata["step"] == "7"
    assert json.loads(loaded.metadata["config"])["model"]["align_corners"] is False
    twin = PoseEmbedder.from_config(loaded.config.model, size=loaded.config.data.size)
    twin.load_state_dict(loaded.states["pose_embedder"])
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), twin.state_dict().values()))
    assert len(file_sha256(path)) == 64
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b"\x80\x04not safetensors"), "not a safetensors checkpoint"),
        (lambda p: save_file({"x": torch.zeros(1)}, p), "not a posedex checkpoint"),
        (lambda p: None, "no such checkpoint file"),
    ],
    ids=["pickle-bytes", "foreign-safetensors", "missing"],
)
def test_bad_checkpoints(tmp_path: Path, make, reason: str) -> None:
    path = tmp_path / "c.safetensors"
    make(path)
    with pytest.raises(DataError, match=reason) as err:
        load_checkpoint(path)
    assert err.value.path == path


def test_a_collection_trained_on_in_two_chained_runs_is_recorded_once() -> None:
    """A run --init from weights that saw the same real collection (make train's second run) lists it once, in the
    order first seen; the same name at another path, or with other identities, is another collection."""
    from model.checkpoint import TRAINED_ON_KEY, TrainedCollection, TrainingRecord, trained_on

    orl = TrainedCollection("orl", "/data/orl", None, ("orl_s01",), ("orl_s31",))
    synth = TrainedCollection("synthvox", "/data/sv", 0, ("sv0000",), ())
    moved = TrainedCollection("orl", "/elsewhere/orl", None, ("orl_s01",), ("orl_s31",))
    record = TrainingRecord((synth, orl, moved, synth, orl), complete=True)
    assert record.collections == (synth, orl, moved)
    assert trained_on({TRAINED_ON_KEY: record.to_json()}) == record
    assert trained_on({TRAINED_ON_KEY: json.dumps({"collections": [vars(orl)] * 2, "complete": True})}).collections == (
        orl,
    )
