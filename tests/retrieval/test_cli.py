"""`index query`: table, JSON and grid outputs over an index built by `index build`; bad images are exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from skimage import data

from model.data.images import write_image
from retrieval import cli as retrieval_cli
from retrieval.cli import INDEX_VARIABLE, default_index
from retrieval.search import QUERY_COLUMNS
from tests.image_corpus import BAD, GOOD, write_oriented
from ui.index_command import main


def query(runner: CliRunner, index, *args: str):
    _, out, checkpoint = index
    return runner.invoke(
        main, ["query", *args, "--index", str(out), "--checkpoint", str(checkpoint), "--device", "cpu"]
    )


def test_a_frame_of_the_index_comes_back_first_as_a_table_and_as_json(runner, index):
    root = index[0]
    frame = root / "sv0001" / "v01" / "00002.png"
    result = query(runner, index, str(frame), "-k", "5")
    assert result.exit_code == 0, result.output
    header, first, *rest = result.stdout.splitlines()
    assert header.split() == QUERY_COLUMNS and len(rest) == 4
    rank, score, _, identity, video, number, path = first.split()
    assert (rank, identity, video, int(number), path) == ("1", "sv0001", "v01", 2, "sv0001/v01/00002.png")
    assert float(score) > 0.99
    result = query(runner, index, str(frame), "-k", "5", "--json")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)  # nothing else on stdout
    assert len(hits) == 5 and all(list(hit) == QUERY_COLUMNS for hit in hits)
    assert hits[0]["path"] == "sv0001/v01/00002.png" and hits[0]["score"] > 0.99
    assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
    assert all(a["score"] >= b["score"] for a, b in zip(hits, hits[1:]))


def test_other_identities_never_returns_the_query_identity(runner, index):
    root = index[0]
    for frame in sorted(root.glob("sv*/v*/*.png"))[::5]:
        result = query(runner, index, str(frame), "-k", "8", "--other-identities", "--json")
        assert result.exit_code == 0, result.output
        hits = json.loads(result.stdout)
        assert len(hits) == 8 and frame.parts[-3] not in {h["identity"] for h in hits}


def test_a_photo_is_cropped_and_the_grid_shows_query_and_hits(runner, index, tmp_path):
    photo = tmp_path / "astronaut.jpg"
    write_image(photo, data.astronaut())
    grid = tmp_path / "grid.png"
    result = query(runner, index, str(photo), "-k", "7", "--grid", str(grid), "--other-identities")
    assert result.exit_code == 0, result.output
    assert "not a frame of the index" in result.stderr  # nothing to drop for a photo: said, not failed
    assert len(result.stdout.splitlines()) == 1 + 7
    picture = np.asarray(Image.open(grid).convert("RGB"))
    assert picture.shape[0] > 2 * 128 and picture.shape[1] > 6 * 128  # 8 cells: two rows of up to six
    assert picture.std() > 20  # faces, not a blank page
    result = query(runner, index, str(photo), "-k", "3", "--identity", "sv0000", "--other-identities", "--json")
    assert "sv0000" not in {h["identity"] for h in json.loads(result.stdout)}


@pytest.mark.parametrize(
    "damage, reason",
    [
        (None, "no such file"),
        (b"", "empty file"),
        (b"not an image at all", "not an image Pillow can decode"),
        ("blank", "no face found"),
    ],
)
def test_bad_images_are_one_line_and_exit_2(runner, index, tmp_path, damage, reason):
    image = tmp_path / "query.png"
    if damage == "blank":
        write_image(image, np.full((200, 200, 3), 128, np.uint8))
    elif damage is not None:
        image.write_bytes(damage)
    result = query(runner, index, str(image))
    assert result.exit_code == 2
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert str(image) in result.stderr and reason in result.stderr


CORPUS_REFUSED = {**BAD, "one-pixel": GOOD["one-pixel"]}  # a 1x1 picture decodes, and holds no face


@pytest.mark.parametrize("make", CORPUS_REFUSED.values(), ids=CORPUS_REFUSED.keys())
def test_every_bad_file_of_the_image_corpus_is_one_line_and_exit_2(runner, index, tmp_path, make):
    sample = make(tmp_path)
    result = query(runner, index, str(sample.path))
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert str(sample.path) in result.stderr and (sample.reason or "no face found") in result.stderr


def test_a_phone_jpeg_stored_turned_with_an_exif_tag_returns_the_upright_jpegs_hits(runner, index, tmp_path):
    """At quality 100 without chroma subsampling the turned JPEG decodes to nearly the upright one's pixels (a lossy
    codec is not exactly symmetric under a turn): every frame of the index scores within 0.01 for both, so the hits
    are the same up to the order of near-ties (read without its tag, the turned photo has no upright face at all)."""
    upright = Image.fromarray(data.astronaut())
    upright.save(tmp_path / "upright.jpg", quality=100, subsampling=0)
    write_oriented(tmp_path / "turned.jpg", upright, 6, quality=100, subsampling=0)
    every = "24"  # the whole index: 3 identities x 2 videos x 4 frames
    hits = [
        json.loads(query(runner, index, str(tmp_path / name), "-k", every, "--json").stdout)
        for name in ("upright.jpg", "turned.jpg")
    ]
    upright_scores = {hit["path"]: hit["score"] for hit in hits[0]}
    assert len(upright_scores) == len(hits[1]) == 24
    assert all(abs(hit["score"] - upright_scores[hit["path"]]) <= 0.01 for hit in hits[1])
    assert np.allclose([hit["score"] for hit in hits[1]], [hit["score"] for hit in hits[0]], atol=0.01)


def test_defaults_to_the_demo_index_in_a_checkout_else_posedex_index(runner, tmp_path, monkeypatch):
    monkeypatch.delenv(INDEX_VARIABLE, raising=False)
    assert default_index() == Path(__file__).resolve().parents[2] / "demo" / "index"
    result = runner.invoke(main, ["query", "--help"])
    assert "POSEDEX_INDEX" in " ".join(result.output.split()) and "demo/index" in result.output
    result = runner.invoke(
        main,
        [
            "query",
            str(tmp_path / "x.png"),
            "--index",
            str(tmp_path / "none"),
            "--checkpoint",
            str(tmp_path / "none.safetensors"),
        ],
    )
    assert result.exit_code == 2 and "no such checkpoint file" in result.stderr
    monkeypatch.setenv(INDEX_VARIABLE, str(tmp_path / "mine"))
    assert default_index() == tmp_path / "mine"
    result = runner.invoke(main, ["query", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and result.stderr.strip() == f"Error: {tmp_path / 'mine'}: no such index folder"


def test_an_installed_package_without_posedex_index_asks_for_one(runner, tmp_path, monkeypatch):
    """Installed, REPO is site-packages: no pyproject.toml beside the packages and no demo index to default to."""
    monkeypatch.delenv(INDEX_VARIABLE, raising=False)
    monkeypatch.setattr(retrieval_cli, "REPO", tmp_path)
    result = runner.invoke(main, ["query", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and result.stderr.strip() == (
        "Error: no index given: pass --index DIR or set POSEDEX_INDEX"
    )
