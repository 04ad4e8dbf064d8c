"""Shared fixtures of the index tests: tiny checkpoints and a tiny SynthVox collection."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from model.config import load_config
from model.daegan import DAEGAN
from model.data.synthvox import synthesize

FRAMES = 3 * 2 * 4  # identities x videos x frames of the SynthVox fixture


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    DAEGAN.from_config(load_config("tiny")).save(path)
    return path


@pytest.fixture(scope="session")
def other_checkpoint(tmp_path_factory) -> Path:
    """Another tiny model: different weights, so a different sha256."""
    path = tmp_path_factory.mktemp("ckpt2") / "other.safetensors"
    DAEGAN.from_config(load_config("tiny")).save(path)
    return path


@pytest.fixture(scope="session")
def synthvox_master(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "synthvox"
    synthesize(out, identities=3, videos_per_identity=2, frames=4, size=32, seed=0, workers=1, progress=False)
    return out


@pytest.fixture
def synthvox(synthvox_master: Path, tmp_path: Path) -> Path:
    """A private copy of the SynthVox collection, free to damage: `sv000{0,1,2}/v0{0,1}/0000{0..3}.png`."""
    return Path(shutil.copytree(synthvox_master, tmp_path / "synthvox"))
