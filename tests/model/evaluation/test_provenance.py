"""The checkpoint's training record and the status it gives each evaluated collection: held out, seen in training,
partly seen, unknown. Collections here are frame tables written by hand (no images are read but in the last test)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from model.checkpoint import FORMAT, TRAINED_ON_KEY, atomic_save_tensors, trained_on, training_record
from model.data.errors import DataError
from model.data.images import write_image
from model.evaluation.frames import EvalCollection, load_collection
from model.evaluation.provenance import HELD_OUT, PARTLY_SEEN, SEEN, UNKNOWN, training_status


def _root(base: Path, name: str, identities: list[str], seed: int | None = None) -> tuple[Path, pd.DataFrame]:
    """A collection folder (synthvox.json when `seed`) and its frame table: two frames per identity."""
    root = base / name
    root.mkdir()
    if seed is not None:
        (root / "synthvox.json").write_text(json.dumps({"seed": seed}))
    rows = [
        {"identity": i, "video": "v00", "frame": f, "path": str((root / i / "v00" / f"{f:05d}.png").resolve())}
        for i in identities
        for f in range(2)
    ]
    return root, pd.DataFrame(rows)


def _collection(identities: list[str], seed: int | None, left_out: tuple[str, ...] = ()) -> EvalCollection:
    frames = pd.DataFrame({"identity": identities, "video": "v00", "frame": 0})
    return EvalCollection("c", Path("c"), frames, torch.zeros(0), seed, 32, left_out)


def test_the_record_round_trips_with_the_split(tmp_path: Path) -> None:
    sv, sv_frames = _root(tmp_path, "sv", ["sv0000", "sv0001", "sv0002"], seed=0)
    real, real_frames = _root(tmp_path, "faces", ["anna", "ben"])
    frames = pd.concat([sv_frames, real_frames], ignore_index=True)
    trained = frames[frames["identity"].isin(["sv0000", "sv0001", "anna"])]
    record = trained_on({TRAINED_ON_KEY: training_record([sv, real], frames, trained)})
    assert record is not None and record.complete
    first, second = record.collections
    assert (first.name, first.path, first.synthvox_seed) == ("sv", str(sv.resolve()), 0)
    assert first.trained == ("sv0000", "sv0001") and first.held_out == ("sv0002",)
    assert (second.name, second.synthvox_seed, second.trained, second.held_out) == ("faces", None, ("anna",), ("ben",))
    # names match within a seed, never across two known seeds; real identities match whatever the seed
    assert record.trained_as("sv0001", 0) == ["sv"] and record.trained_as("sv0001", 1) == []
    assert record.trained_as("sv0001", None) == ["sv"] and record.trained_as("sv0002", 0) == []
    assert record.trained_as("anna", 4) == ["faces"]
    assert trained_on({}) is None  # a checkpoint from before the record
    with pytest.raises(DataError, match="not a training record"):
        trained_on({TRAINED_ON_KEY: "{}"}, source="old.safetensors")


def test_a_run_from_init_weights_inherits_their_record(tmp_path: Path) -> None:
    sv, frames = _root(tmp_path, "sv", ["sv0000"], seed=0)
    earlier = json.loads(training_record([sv], frames, frames))
    earlier["collections"][0]["trained"] = ["sv0009"]
    init = tmp_path / "init.safetensors"
    atomic_save_tensors({"x": torch.zeros(1)}, init, {"format": FORMAT, TRAINED_ON_KEY: json.dumps(earlier)})
    record = trained_on({TRAINED_ON_KEY: training_record([sv], frames, frames, init=init)})
    assert record.complete and record.trained_as("sv0009", 0) == ["sv"] and record.trained_as("sv0000", 0) == ["sv"]
    atomic_save_tensors({"x": torch.zeros(1)}, init, {"format": FORMAT})  # weights that do not say what they saw
    assert not trained_on({TRAINED_ON_KEY: training_record([sv], frames, frames, init=init)}).complete


def test_each_status(tmp_path: Path) -> None:
    sv, frames = _root(tmp_path, "sv", ["sv0000", "sv0001"], seed=0)
    record = trained_on({TRAINED_ON_KEY: training_record([sv], frames, frames)})
    assert training_status(record, _collection(["sv0000", "sv0001"], 0)).status == SEEN
    assert training_status(record, _collection(["sv0000", "sv0001"], 1)).status == HELD_OUT  # another seed
    partly = training_status(record, _collection(["sv0000", "sv0005"], 0))
    assert partly.status == PARTLY_SEEN and partly.label == "partly seen (1 of 2 identities)"
    assert partly.trained_as == ["sv"]
    dropped = training_status(record, _collection(["sv0005"], 0, left_out=("sv0000",)))
    assert dropped.status == HELD_OUT and dropped.left_out == ["sv0000"] and "left out" in dropped.label
    unknown = training_status(None, _collection(["sv0005"], 0))
    assert unknown.status == UNKNOWN and "does not say" in unknown.label


def test_a_partly_seen_collection_is_read_without_its_seen_identities(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    for n, identity in enumerate(["anna", "ben", "cara"]):
        (root / identity / "v00").mkdir(parents=True)
        for f in range(2):
            write_image(root / identity / "v00" / f"{f:05d}.png", np.full((32, 32, 3), 40 * n + f, np.uint8))
    frames = pd.DataFrame({"identity": ["anna"], "path": [str((root / "anna").resolve() / "x.png")]})
    record = trained_on({TRAINED_ON_KEY: training_record([root], frames, frames)})
    common = dict(size=32, fps=1.0, max_frames=100, seed=0, training=record, progress=False)
    kept = load_collection(root, held_out_only=True, **common)
    assert kept.left_out == ("anna",) and sorted(set(kept.frames["identity"])) == ["ben", "cara"]
    assert len(kept.images) == 4 and training_status(record, kept).status == HELD_OUT
    whole = load_collection(root, held_out_only=False, **common)
    assert whole.left_out == () and training_status(record, whole).status == PARTLY_SEEN
    assert torch.equal(whole.images[2:], kept.images)  # anna's two frames come first
