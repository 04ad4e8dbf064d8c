"""`Retriever.hit_images` reads hit frames only from inside the index's recorded roots: on a real index, a frame
file of the collection replaced by a symlink to a file outside it is refused (and names the frame), a stored path
climbing out with `..` is refused, and the ordinary frames beside them still open."""

from __future__ import annotations

import shutil

import pytest

from model.data.errors import DataError
from model.data.images import read_image
from retrieval.search import Retriever


@pytest.fixture(scope="module")
def linked(built) -> str:
    """The stored path of one indexed frame whose file now links to a copy outside the collection (same pixels)."""
    root, *_ = built
    frame = sorted(root.resolve().rglob("*.png"))[-1]
    outside = root.parent / "outside.png"
    shutil.copyfile(frame, outside)
    frame.unlink()
    frame.symlink_to(outside)
    return frame.relative_to(root.resolve()).as_posix()


def test_a_symlink_inside_the_root_to_a_file_outside_is_refused(retriever: Retriever, linked: str) -> None:
    rows = retriever.store.find([linked])
    assert len(rows) == 1  # a frame of the index, whose file is readable through the link
    with pytest.raises(DataError, match="leads outside its collection root") as err:
        retriever.hit_images(rows)
    assert str(err.value).startswith(f"{linked}: ")


def test_the_ordinary_frames_beside_it_still_open(built, retriever: Retriever, linked: str) -> None:
    root, *_ = built
    rows = retriever.frames(retriever.frame_ids())
    ordinary = rows[rows["path"] != linked].iloc[:3]
    images = retriever.hit_images(ordinary)
    assert len(images) == 3
    for image, stored in zip(images, ordinary["path"]):
        assert (image == read_image(root / stored)).all()


def test_a_stored_path_escaping_the_root_with_dotdot_is_refused(built, retriever: Retriever, linked: str) -> None:
    root, *_ = built
    escaping = retriever.frames(retriever.frame_ids()[:1]).assign(path="../outside.png")
    assert (root / "../outside.png").is_file()  # the copy `linked` made: there to be read, were it not refused
    with pytest.raises(DataError, match="leads outside its collection root") as err:
        retriever.hit_images(escaping)
    assert str(err.value).startswith("../outside.png: ")
