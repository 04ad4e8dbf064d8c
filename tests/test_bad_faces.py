"""Photos whose faces are not one whole face, through `index query` and `daegan reenact`: no face at all, several
faces (the largest is used and the output says how many were found), a face cut by the border (cropped with the
edge replicated while the detector finds it; half out of the picture, "no face found") (issue 14, "faces").

The pictures are SynthVox renders composed on a canvas in code, so the faces are known and nothing is committed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from model.cli import main as daegan_main
from model.data.face_crop import crop_face, crop_largest_face
from model.data.synthvox import Identity, render
from model.data.synthvox_motion import Pose
from tests.conftest import tiny_indexed_collection
from ui.index_command import main as index_main

BACKGROUND = 200  # the canvas grey around composed faces


def face(index: int, size: int) -> np.ndarray:
    """SynthVox identity `index`, frontal and neutral, `(size, size, 3)` uint8: a face the detector finds."""
    return render(Identity.from_seed(0, index), Pose(), size)


def several_faces() -> np.ndarray:
    """Three people side by side, the largest (identity 0) on the left: `(256, 576, 3)`."""
    canvas = np.full((256, 576, 3), BACKGROUND, np.uint8)
    canvas[:, :256] = face(0, 256)
    canvas[64:224, 288:448] = face(1, 160)
    canvas[96:224, 448:576] = face(2, 128)
    return canvas


def cut_by_the_border(fraction: float) -> np.ndarray:
    """Identity 0 shifted left so that `fraction` of its picture lies outside the frame."""
    shift = round(256 * fraction)
    canvas = np.full((256, 256, 3), BACKGROUND, np.uint8)
    canvas[:, : 256 - shift] = face(0, 256)[:, shift:]
    return canvas


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(a tiny checkpoint, an index of a small SynthVox collection built with it, a folder of the test photos)."""
    folder = tmp_path_factory.mktemp("bad_faces")
    checkpoint, root, _ = tiny_indexed_collection(folder)
    photos = folder / "photos"
    photos.mkdir()
    pictures = {
        "blank": np.full((256, 256, 3), BACKGROUND, np.uint8),
        "one": face(0, 256),
        "several": several_faces(),
        "slightly_cut": cut_by_the_border(0.2),
        "half_out": cut_by_the_border(0.5),
    }
    for name, img in pictures.items():
        Image.fromarray(img).save(photos / f"{name}.png")
    return checkpoint, folder / "index", photos


def query(setup: tuple[Path, Path, Path], photo: str, out: Path, *extra: str) -> Result:
    checkpoint, index, photos = setup
    return CliRunner().invoke(
        index_main,
        [
            "query",
            str(photos / f"{photo}.png"),
            "--index",
            str(index),
            "--checkpoint",
            str(checkpoint),
            "--device",
            "cpu",
            "--grid",
            str(out / "hits.png"),
            *extra,
        ],
    )


def reenact(setup: tuple[Path, Path, Path], source: str, driving: str, out: Path) -> Result:
    checkpoint, _, photos = setup
    return CliRunner().invoke(
        daegan_main,
        [
            "reenact",
            "--checkpoint",
            str(checkpoint),
            "--source",
            str(photos / f"{source}.png"),
            "--driving",
            str(photos / f"{driving}.png"),
            "--out",
            str(out / "out.png"),
            "--device",
            "cpu",
        ],
    )


def assert_refused(result: Result, photo: Path, out: Path) -> None:
    """One line naming `photo` and "no face found", exit 2, no traceback, nothing written to `out`."""
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr == f"Error: {photo}: no face found\n", result.output
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("photo", ["blank", "half_out"])
def test_a_photo_without_a_whole_face_is_refused_by_index_query(setup, tmp_path, photo):
    assert_refused(query(setup, photo, tmp_path), setup[2] / f"{photo}.png", tmp_path)


@pytest.mark.parametrize("photo", ["blank", "half_out"])
@pytest.mark.parametrize("role", ["source", "driving"])
def test_a_photo_without_a_whole_face_is_refused_by_daegan_reenact(setup, tmp_path, photo, role):
    source, driving = (photo, "one") if role == "source" else ("one", photo)
    assert_refused(reenact(setup, source, driving, tmp_path), setup[2] / f"{photo}.png", tmp_path)


def nearest_face(crop: np.ndarray) -> int:
    """Which of the three composed faces (0, 1, 2) `crop` shows: the one whose own crop it differs least from."""
    size = crop.shape[0]
    alone = [crop_face(face(i, side), size, source=str(i)) for i, side in enumerate((256, 160, 128))]
    return int(np.argmin([np.abs(crop.astype(int) - other).mean() for other in alone]))


def test_the_largest_of_several_faces_is_cropped_and_all_are_counted():
    found = crop_largest_face(several_faces(), 64, source="several.png")
    assert found.num_faces == 3
    assert nearest_face(found.crop) == 0


def test_index_query_of_several_faces_says_how_many_and_keeps_json_pure(setup, tmp_path):
    result = query(setup, "several", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) > 0
    assert f"note: {setup[2] / 'several.png'}: 3 faces found; the largest was used" in result.stderr
    assert "faces found" not in query(setup, "one", tmp_path, "--json").stderr


@pytest.mark.parametrize("role", ["source", "driving"])
def test_daegan_reenact_of_several_faces_uses_the_largest_and_says_how_many(setup, tmp_path, role):
    """The crop drawn in the picture written is the largest face's, and the output names the photo and the count."""
    source, driving = ("several", "one") if role == "source" else ("one", "several")
    result = reenact(setup, source, driving, tmp_path)
    assert result.exit_code == 0, result.output
    assert f"{setup[2] / 'several.png'}: 3 faces found; the largest was used" in result.stdout
    grid = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))  # (S, 3S, 3): source | driving | result
    size = grid.shape[0]
    tile = 0 if role == "source" else 1
    assert nearest_face(grid[:, tile * size : (tile + 1) * size]) == 0
    assert "faces found" not in reenact(setup, "one", "one", tmp_path).stdout


def test_a_face_slightly_cut_by_the_border_is_cropped_with_the_edge_replicated(setup, tmp_path):
    """A fifth of the picture outside the frame: the face is still found, and the crop's left columns repeat the
    image's edge column rather than showing a border."""
    crop = crop_face(cut_by_the_border(0.2), 64, source="slightly_cut")
    assert crop.shape == (64, 64, 3)
    assert query(setup, "slightly_cut", tmp_path).exit_code == 0
    result = reenact(setup, "slightly_cut", "slightly_cut", tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.png").is_file()
