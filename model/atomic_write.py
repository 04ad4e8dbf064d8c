"""Writing a file or a folder so that readers see the old version or the new one, never half of either.

Every output posedex replaces while someone may read it, or may be killed while writing it, goes through here:
checkpoints and training state, the index's ``manifest.json`` and a new index's folder, reenactment pictures and
videos, prepared frame folders and SynthVox collections. The body of ``with atomic_file(dest) as tmp:`` (or
`atomic_folder`) writes `tmp` by any means; leaving the block normally puts it in place, any exception (Ctrl-C
included) removes it.

Choices made:
- The temporary lies beside the destination (same filesystem, so `os.replace` is one atomic rename) and is hidden:
  ``.<name>.tmp-<random><suffix>``. A file's temporary keeps the destination's suffix because some writers (OpenCV's
  video writer, Pillow) choose the format by it; folder readers skip hidden entries, so a leftover is never data.
- A file is fsynced before the rename and its folder after it, so after a power loss the destination holds the
  whole old or the whole new content. A filesystem that refuses to fsync a folder (some network filesystems,
  Windows) is let be: the rename is still atomic, only not yet durable.
- A folder is replaced by two renames (the old one aside, the new one in) since no rename replaces a non-empty
  folder. The next `atomic_folder` for the same destination removes unfinished temporaries of a killed run and
  puts back a folder that was set aside when the run died between the two renames. The files inside a folder are
  not fsynced one by one (thousands of frames that a rerun makes again); the folder and its parent are.
- The destination's parent folder is created when missing; a parent `atomic_folder` created is removed again when
  the write fails and leaves it empty.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

TEMPORARY = "tmp"  # ``.<name>.tmp-*``: a write in progress, or left by a killed one
SET_ASIDE = "old"  # ``.<name>.old-*``: a replaced folder, between the two renames of `atomic_folder`
_FSYNC_REFUSED = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES, errno.EPERM, errno.EBADF}


def fsync_dir(path: str | Path) -> None:
    """Make the entries of folder `path` (a file created or renamed in it) durable, where the platform allows."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as err:
        if err.errno in _FSYNC_REFUSED:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in _FSYNC_REFUSED:
            raise
    finally:
        os.close(fd)


def fsync_file(path: str | Path) -> None:
    """Make the content of the file at `path` durable (opened for writing: Windows fsyncs only such handles)."""
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """``with atomic_file(dest) as tmp:`` write the file `tmp` (beside `dest`, same suffix); on success it replaces
    `dest` durably, on any error it is removed and `dest` is as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path, path.suffix)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


@contextmanager
def atomic_folder(path: str | Path, *, replace: bool = True) -> Iterator[Path]:
    """``with atomic_folder(dest) as tmp:`` fill the empty folder `tmp` (beside `dest`); on success it takes the
    place of `dest` as a whole, on any error it vanishes and `dest` is as it was.

    `replace`: an existing `dest` folder is replaced; when False `dest` must be absent or an empty folder (one the
    caller made to reserve the name), and the rename is refused with an `OSError` if `dest` filled meanwhile.
    """
    path = Path(path)
    made_parent = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    _tidy_leftovers(path)
    tmp = _temporary(path, "")
    tmp.mkdir()
    try:
        yield tmp
        fsync_dir(tmp)
        if replace and path.exists():
            old = path.with_name(f".{path.name}.{SET_ASIDE}-{uuid.uuid4().hex[:8]}")
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            if path.is_dir():
                path.rmdir()  # refuses a folder that is not empty: nothing of someone else's is ever removed
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if made_parent:
            with suppress(OSError):
                path.parent.rmdir()  # only when empty
        raise
    fsync_dir(path.parent)


def _temporary(path: Path, suffix: str) -> Path:
    """A fresh hidden name beside `path` (random, so concurrent writers never share one)."""
    return path.with_name(f".{path.name}.{TEMPORARY}-{uuid.uuid4().hex[:8]}{suffix}")


def _tidy_leftovers(path: Path) -> None:
    """Remove what a killed `atomic_folder` for `path` left half-written, and put back a folder it had set aside."""
    for stale in path.parent.glob(f".{path.name}.{TEMPORARY}-*"):
        shutil.rmtree(stale)
    for old in path.parent.glob(f".{path.name}.{SET_ASIDE}-*"):
        if path.exists():
            shutil.rmtree(old)
        else:
            old.rename(path)  # killed between the two renames: the set-aside folder is the last complete one
