"""How an index names its frames: stored paths relative to a collection root, and back to a file on disk.

- A frame row's `path` is the POSIX path of its file relative to its collection root. When a build gets several
  roots, each root's paths are prefixed by its folder name (``<root name>/<relative path>``; names must differ);
  the root of a one-root build has the empty prefix. The index records each root's prefix and absolute path
  (`schema.Root`), so readers find a hit's file without being told where the collection is.
- A frame of a video file is stored as ``<relative video path>#<frame number>``: every row needs a unique path,
  and the number is what `model.data.collection.load_frame` takes.
- Resolving never leaves the roots: a stored path that would point outside its root (``..``, symlinks) is refused.
  This is what lets the UI show hits while reading nothing but the index's own collection.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from model.data.errors import DataError
from model.data.video import VIDEO_SUFFIXES

VIDEO_FRAME_SEPARATOR = "#"


def stored_path(prefix: str, root: Path, path: Path, frame: int) -> str:
    """The `path` a frame row stores for file `path` and frame number `frame`; both paths absolute and resolved."""
    relative = Path(path).relative_to(root).as_posix()
    if Path(path).suffix.lower() in VIDEO_SUFFIXES:
        relative = f"{relative}{VIDEO_FRAME_SEPARATOR}{int(frame)}"
    return f"{prefix}/{relative}" if prefix else relative


def resolve_stored(stored: str, roots: Mapping[str, Path]) -> tuple[Path, int]:
    """The file and frame number of a stored path, given the index's roots {prefix: folder}.

    A `DataError` naming the stored path when no root holds it or when it would lead outside its root.
    """
    relative, frame = stored, 0
    head, sep, tail = stored.rpartition(VIDEO_FRAME_SEPARATOR)
    if sep and tail.isdigit() and Path(head).suffix.lower() in VIDEO_SUFFIXES:
        relative, frame = head, int(tail)
    prefix, _, rest = relative.partition("/")
    if prefix and rest and prefix in roots:
        root, relative = Path(roots[prefix]), rest
    elif "" in roots:
        root = Path(roots[""])
    else:
        raise DataError(Path(stored), f"names no collection root of the index (roots: {sorted(roots) or 'none'})")
    root = root.resolve()
    file = (root / relative).resolve()
    if not file.is_relative_to(root):
        raise DataError(Path(stored), f"leads outside its collection root {root}; refused")
    return file, frame
