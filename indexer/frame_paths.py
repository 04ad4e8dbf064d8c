"""How an index names its frames: stored paths relative to a collection root, and back to a file on disk.

- A frame row's `path` is the POSIX path of its file relative to its collection root. When a build gets several
  roots, each root's paths are prefixed by its folder name (``<root name>/<relative path>``; names must differ);
  the root of a one-root build has the empty prefix. The index records each root's prefix and absolute path
  (`schema.Root`), so readers find a hit's file without being told where the collection is.
- A frame of a video file is stored as ``<relative video path>#<frame number>``: every row needs a unique path,
  and the number is what `model.data.collection.load_frame` takes.
- Resolving never leaves the roots: a stored path whose real path (every symlink followed, ``..`` collapsed) is not
  inside its root's real path is refused, and so is one that cannot be resolved (a symlink loop, a NUL byte).
  `resolve_stored` is the one place this is checked; every reader of a stored frame (`Store.frame_file`, hence
  `Retriever.hit_images` and every picture the UI shows) goes through it and opens the real path it returns, so
  the UI reads nothing but the index's own collection whatever the metadata or the collection's links say.
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

    The file is the real path (symlinks followed) and lies inside the root's real path: open it, not the stored
    one. A `DataError` naming the stored path when no root holds it, when it would lead outside its root, or when
    it cannot be resolved.
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
    try:
        root = root.resolve()  # the real folder (a root that is itself a link is followed)
        file = (root / relative).resolve()  # an absolute `relative` replaces the root, and is then refused below
    except (OSError, RuntimeError, ValueError) as err:  # a symlink loop (RuntimeError before 3.13), a NUL byte
        raise DataError(Path(stored.replace("\0", "\\0")), f"cannot be resolved ({err}); refused") from err
    if not file.is_relative_to(root):
        raise DataError(Path(stored), f"leads outside its collection root {root}; refused")
    return file, frame
