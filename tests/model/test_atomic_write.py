"""`model.atomic_write`: a destination holds its old or its new content, never a mix; no temporaries stay behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.atomic_write import atomic_file, atomic_folder


class WriterDied(Exception):
    """Raised by a test's writer halfway through."""


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_file_puts_the_whole_new_content_in_place(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "result.bin"  # the missing folder is made
    data = bytes(range(256)) * 4096  # 1 MiB, written in pieces
    with atomic_file(dest) as tmp:
        assert tmp.parent == dest.parent and tmp.name.startswith(".") and tmp.suffix == ".bin"
        with open(tmp, "wb") as file:
            for start in range(0, len(data), 65536):
                file.write(data[start : start + 65536])
        assert not dest.exists()  # nothing is visible before the block ends
    assert dest.read_bytes() == data
    assert _entries(dest.parent) == ["result.bin"]


def test_a_writer_that_dies_midway_leaves_the_old_content_and_no_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "manifest.json"
    dest.write_text("old")
    with pytest.raises(WriterDied), atomic_file(dest) as tmp:
        tmp.write_text("new, but only the first hal")
        raise WriterDied
    assert dest.read_text() == "old"
    assert _entries(tmp_path) == ["manifest.json"]


def test_a_writer_that_dies_before_the_first_write_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_file(tmp_path / "video.mp4"):
        raise KeyboardInterrupt
    assert _entries(tmp_path) == []


def test_atomic_file_replaces_an_existing_file(tmp_path: Path) -> None:
    dest = tmp_path / "weights.safetensors"
    dest.write_bytes(b"old" * 1000)
    with atomic_file(dest) as tmp:
        tmp.write_bytes(b"new")
    assert dest.read_bytes() == b"new"
    assert _entries(tmp_path) == ["weights.safetensors"]


def test_atomic_folder_replaces_the_whole_folder(tmp_path: Path) -> None:
    dest = tmp_path / "me" / "talk"
    dest.mkdir(parents=True)
    (dest / "stale.png").write_bytes(b"from an older run")
    with atomic_folder(dest) as tmp:
        (tmp / "0000000.png").write_bytes(b"frame")
        assert _entries(dest) == ["stale.png"]  # the old folder is whole until the block ends
    assert _entries(dest) == ["0000000.png"]
    assert _entries(dest.parent) == ["talk"]


def test_a_folder_writer_that_dies_midway_leaves_the_old_folder_and_no_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "talk"
    dest.mkdir()
    (dest / "0000000.png").write_bytes(b"previous")
    with pytest.raises(WriterDied), atomic_folder(dest) as tmp:
        (tmp / "0000000.png").write_bytes(b"half")
        raise WriterDied
    assert _entries(tmp_path) == ["talk"]
    assert (dest / "0000000.png").read_bytes() == b"previous"


def test_a_failed_folder_write_removes_the_parent_it_made(tmp_path: Path) -> None:
    with pytest.raises(WriterDied), atomic_folder(tmp_path / "me" / "talk"):
        raise WriterDied
    assert _entries(tmp_path) == []


def test_without_replace_only_an_empty_placeholder_gives_way(tmp_path: Path) -> None:
    reserved = tmp_path / "index"
    reserved.mkdir()
    with atomic_folder(reserved, replace=False) as tmp:
        (tmp / "meta.sqlite").write_bytes(b"db")
    assert _entries(reserved) == ["meta.sqlite"]

    taken = tmp_path / "taken"
    taken.mkdir()
    with pytest.raises(OSError), atomic_folder(taken, replace=False) as tmp:
        (tmp / "mine").write_bytes(b"new")
        (taken / "theirs").write_bytes(b"written meanwhile by someone else")
    assert _entries(taken) == ["theirs"]
    assert _entries(tmp_path) == ["index", "taken"]


def test_leftovers_of_a_killed_folder_write_are_cleared_or_restored(tmp_path: Path) -> None:
    (tmp_path / ".talk.tmp-dead").mkdir()  # killed while writing
    (tmp_path / ".talk.old-dead").mkdir()  # killed between setting the old folder aside and renaming the new in
    (tmp_path / ".talk.old-dead" / "0000000.png").write_bytes(b"previous")
    with pytest.raises(WriterDied), atomic_folder(tmp_path / "talk"):
        raise WriterDied
    assert _entries(tmp_path) == ["talk"]
    assert (tmp_path / "talk" / "0000000.png").read_bytes() == b"previous"
