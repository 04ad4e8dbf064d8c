"""`daegan reenact` over the image corpus: each bad file, as a source photo or as the driving photo, is one line
naming it and exit code 2, and nothing is written; a phone photo stored turned with an EXIF tag is reenacted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from skimage import data

from model.cli import main as daegan_main
from tests.image_corpus import BAD, GOOD, write_oriented

REFUSED = {**BAD, "one-pixel": GOOD["one-pixel"]}  # a 1x1 picture decodes, and holds no face


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, Path]:
    """(a tiny checkpoint, the astronaut photo): a source and a driver with a face the detector finds."""
    from model.config import load_config
    from model.daegan import DAEGAN

    folder = tmp_path_factory.mktemp("reenact")
    DAEGAN.from_config(load_config("tiny")).save(folder / "tiny.safetensors")
    Image.fromarray(data.astronaut()).save(folder / "astronaut.png")
    return folder / "tiny.safetensors", folder / "astronaut.png"


def reenact(runner: CliRunner, checkpoint: Path, source: Path, driving: Path, out: Path):
    return runner.invoke(
        daegan_main,
        [
            "reenact",
            "--checkpoint",
            str(checkpoint),
            "--source",
            str(source),
            "--driving",
            str(driving),
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
    )


@pytest.mark.parametrize("role", ["source", "driving"])
@pytest.mark.parametrize("make", REFUSED.values(), ids=REFUSED.keys())
def test_every_bad_file_of_the_image_corpus_is_one_line_and_exit_2(runner, photos, tmp_path, make, role):
    checkpoint, good = photos
    sample = make(tmp_path)
    source, driving = (sample.path, good) if role == "source" else (good, sample.path)
    result = reenact(runner, checkpoint, source, driving, tmp_path / "out.png")
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert f"{sample.path}: {sample.reason or 'no face found'}" in result.stderr
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_phone_photo_stored_turned_with_an_exif_tag_is_reenacted_as_the_upright_photo(
    runner, photos, tmp_path, orientation
):
    """The picture written (source crop, driver, result) matches the upright photo's within a lossy codec's error;
    read sideways, the detector finds the face turned, or not at all."""
    checkpoint, good = photos
    options = {"quality": 100, "subsampling": 0}
    Image.open(good).save(tmp_path / "upright.jpg", **options)
    write_oriented(tmp_path / "turned.jpg", Image.open(good), orientation, **options)
    pictures = []
    for name in ("upright", "turned"):
        result = reenact(runner, checkpoint, tmp_path / f"{name}.jpg", good, tmp_path / f"{name}_out.png")
        assert result.exit_code == 0, result.output
        pictures.append(np.asarray(Image.open(tmp_path / f"{name}_out.png"), dtype=float))
    assert pictures[0].shape == pictures[1].shape and np.abs(pictures[0] - pictures[1]).mean() < 2
