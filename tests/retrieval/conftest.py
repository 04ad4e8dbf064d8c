"""Shared fixtures of the retrieval tests: a tiny SynthVox collection, a tiny model and a flat index of it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from indexer.store import Store
from model.checkpoint import file_sha256
from model.config import load_config
from model.daegan import DAEGAN
from model.data.collection import read_collection
from model.data.images import read_image
from model.data.synthvox import synthesize
from retrieval.search import Retriever
from ui.index_command import main


def save_tiny_model(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    DAEGAN.from_config(load_config("tiny"), with_discriminator=False).save(path)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A SynthVox collection (3 identities x 2 videos x 4 frames), a tiny model and a flat index of its frames.

    Yields (root, index dir, checkpoint, frame rows in index order, their unit pose codes (N, dim), their ids).
    """
    tmp = tmp_path_factory.mktemp("retrieval")
    root = tmp / "collection"
    synthesize(root, identities=3, videos_per_identity=2, frames=4, size=32, seed=0, workers=1, progress=False)
    checkpoint = save_tiny_model(tmp / "tiny.safetensors", seed=0)
    model = DAEGAN.from_checkpoint(checkpoint)
    frames = read_collection(root)
    vectors = model.encode_pose([read_image(p) for p in frames["path"]]).numpy()  # (N, dim), unit rows
    rows = pd.DataFrame(
        {
            "path": [Path(p).relative_to(root.resolve()).as_posix() for p in frames["path"]],
            "identity": frames["identity"],
            "video": frames["video"],
            "frame": frames["frame"],
            "time_s": frames["time"],
        }
    )
    with Store.create(tmp / "index", dim=model.pose_dim, checkpoint_sha256=file_sha256(checkpoint)) as store:
        ids = store.add(rows, vectors, roots={"": root})
    yield root, tmp / "index", checkpoint, frames, vectors, ids


@pytest.fixture(scope="module")
def retriever(built):
    _, index, checkpoint, *_ = built
    with Retriever(index, checkpoint, device="cpu") as r:
        yield r


@pytest.fixture(scope="module")
def index(built, tmp_path_factory) -> tuple[Path, Path, Path]:
    """(collection root, index built over it by the CLI, checkpoint)."""
    root, _, checkpoint, *_ = built
    out = tmp_path_factory.mktemp("cli") / "index"
    result = CliRunner().invoke(
        main,
        [
            "build",
            str(root),
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(out),
            "--workers",
            "0",
            "--device",
            "cpu",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    return root, out, checkpoint
