"""`resolve_stored` keeps every stored frame path inside its collection root: `..`, absolute paths, symlinks that
lead out and unresolvable links are refused with a `DataError` naming the stored path; links within the root and
ordinary frames resolve to their real files. Real files and links on disk, no index needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.frame_paths import resolve_stored
from model.data.collection import load_frame
from model.data.errors import DataError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A collection root holding one real frame, next to a secret file outside it and links of both kinds."""
    collection = tmp_path / "collection"
    (collection / "p0" / "v0").mkdir(parents=True)
    Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(collection / "p0" / "v0" / "00000.png")
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(tmp_path / "secret.png")
    (collection / "p0" / "v0" / "00001.png").symlink_to(tmp_path / "secret.png")  # inside the root, leads out
    (collection / "p0" / "v0" / "00002.png").symlink_to(collection / "p0" / "v0" / "00000.png")  # stays inside
    (collection / "p0" / "out").symlink_to(tmp_path, target_is_directory=True)  # a folder link that leads out
    (collection / "loop_a.png").symlink_to(collection / "loop_b.png")
    (collection / "loop_b.png").symlink_to(collection / "loop_a.png")
    return collection


def test_an_ordinary_frame_and_a_link_within_the_root_open(root: Path) -> None:
    file, frame = resolve_stored("p0/v0/00000.png", {"": root})
    assert (file, frame) == (root.resolve() / "p0/v0/00000.png", 0)
    assert load_frame(file, frame)[0, 0, 0] == 100
    linked, _ = resolve_stored("p0/v0/00002.png", {"": root})
    assert linked == file  # the real path is returned, and that is what gets opened


@pytest.mark.parametrize("stored", ["p0/v0/00001.png", "p0/out/secret.png"])
def test_a_symlink_inside_the_root_that_leads_outside_is_refused(root: Path, stored: str) -> None:
    assert (root / stored).is_file()  # the file is there and readable: only the check keeps it out
    with pytest.raises(DataError, match="leads outside its collection root") as err:
        resolve_stored(stored, {"": root})
    assert err.value.path == Path(stored)


@pytest.mark.parametrize("stored", ["../secret.png", "p0/../../secret.png", "p0/v0/../../../secret.png"])
def test_a_stored_path_climbing_out_with_dotdot_is_refused(root: Path, stored: str) -> None:
    assert (root / stored).is_file()
    with pytest.raises(DataError, match="leads outside its collection root") as err:
        resolve_stored(stored, {"": root})
    assert err.value.path == Path(stored)


def test_an_absolute_stored_path_is_refused(root: Path) -> None:
    secret = str(root.parent / "secret.png")
    with pytest.raises(DataError, match="leads outside its collection root"):
        resolve_stored(secret, {"": root})


def test_a_prefixed_root_confines_its_own_paths(root: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    assert resolve_stored("collection/p0/v0/00000.png", {"collection": root, "other": other})[0].is_file()
    with pytest.raises(DataError, match="leads outside its collection root"):  # out of `other` into `collection`
        resolve_stored("other/../collection/p0/v0/00000.png", {"collection": root, "other": other})


@pytest.mark.parametrize("stored", ["loop_a.png", "p0/v0/a\0b.png"])
def test_an_unresolvable_stored_path_is_refused_not_raised_as_another_error(root: Path, stored: str) -> None:
    with pytest.raises(DataError, match="cannot be resolved"):
        resolve_stored(stored, {"": root})
