"""Shared fixtures: small frame collections built in exactly the layouts users have on disk."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

# One torch thread in every run, alone or under `make test`'s one worker per core: a learning test then computes the
# same float sums (and so the same trajectory) whichever way it is run, and workers do not oversubscribe the cores.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def seeded() -> None:
    """Every test starts from the same global random state, whatever ran before it in its worker."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def write_frame(path: Path, value: int, size: int = 24) -> Path:
    """A small image whose pixels all equal `value` (so a test can tell frames apart after decoding)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)
    return path


def write_video(path: Path, num_frames: int, fps: float = 30.0, size: int = 32) -> Path:
    """An mp4 whose frame i is a flat grey of level 4*i (so decoded frames can be identified)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
    for i in range(num_frames):
        writer.write(np.full((size, size, 3), 4 * i, np.uint8))
    writer.release()
    return path


def decode_video(path: Path) -> list[np.ndarray]:
    """Every frame OpenCV decodes from a video, RGB: what `prepare` and reenactment see."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def tiny_indexed_collection(folder: Path) -> tuple[Path, Path, Path]:
    """A fresh tiny checkpoint, a 2-identity SynthVox collection and an index of it built by `index build` with that
    checkpoint, under `folder`: (checkpoint, collection root, index folder). For tests of what users feed in."""
    from model.config import load_config
    from model.daegan import DAEGAN
    from model.data.synthvox import synthesize
    from ui.index_command import main as index_main

    checkpoint = folder / "tiny.safetensors"
    DAEGAN.from_config(load_config("tiny")).save(checkpoint)
    root = folder / "synthvox"
    synthesize(root, identities=2, videos_per_identity=1, frames=2, size=32, seed=0, workers=1, progress=False)
    built = CliRunner().invoke(
        index_main,
        [
            "build",
            str(root),
            "--out",
            str(folder / "index"),
            "--checkpoint",
            str(checkpoint),
            "--workers",
            "0",
            "--device",
            "cpu",
            "--no-progress",
        ],
    )
    assert built.exit_code == 0, built.output
    return checkpoint, root, folder / "index"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def frames_tree(tmp_path: Path) -> Path:
    """`<root>/<identity>/<video>/<frame>.png`: 3 identities x 2 videos x 4 frames, plus labels.csv."""
    root = tmp_path / "frames"
    lines = ["identity,video,frame,time,yaw"]
    for i in range(3):
        for v in range(2):
            for f in range(4):
                write_frame(root / f"p{i}" / f"v{v}" / f"{f:05d}.png", 10 * i + 3 * v + f)
                lines.append(f"p{i},v{v},{f},{f / 25},{10.0 * f - 15}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def vox_crops_tree(tmp_path: Path) -> Path:
    """VoxCeleb1's face-crop release: `<Name>/1.6/<ytid>/<7-digit frame>.jpg`, and vox1_meta.csv beside it."""
    root = tmp_path / "unzippedFaces"
    people = {"A.J._Buckley": "id10001", "Eartha_Kitt": "id10275", "Robert_Downey_Jr.": "id10900"}
    for n, name in enumerate(people):
        for f in (375, 400):
            write_frame(root / name / "1.6" / f"yt{n}xyz" / f"{f:07d}.jpg", 40 * n + f % 7)
    # tab-separated, names with the trailing spaces and dots the real table has
    meta = ["VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet"]
    meta += [
        "id10001\tA.J._Buckley \tm\tIreland\tdev",
        "id10275\tEartha_Kitt\tf\tUSA\ttest",
        "id10900\tRobert_Downey_Jr\tm\tUSA\tdev",
    ]
    (tmp_path / "vox1_meta.csv").write_text("\n".join(meta) + "\n")
    return root


@pytest.fixture
def video_tree(tmp_path: Path) -> Path:
    """The video layout `<id>/<ytid>/<utt>.mp4`: two identities, 30 fps clips of 30 and 15 frames."""
    root = tmp_path / "videos"
    write_video(root / "id10001" / "1zcIwhmdeo4" / "00001.mp4", 30)
    write_video(root / "id10001" / "1zcIwhmdeo4" / "00002.mp4", 15)
    write_video(root / "id10280" / "7w0IBEWc9Qw" / "00001.mp4", 30)
    return root
