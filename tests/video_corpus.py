"""Videos made in a test's folder: mp4v files written by OpenCV's VideoWriter, then patched where VideoWriter cannot
write what a phone or an editor writes (a rotation flag, a variable frame rate). Nothing binary is committed.

The patches walk the MP4 box tree (ISO/IEC 14496-12: each box is a 32-bit big-endian size, a 4-byte type, then its
payload; a size of 1 means a 64-bit size follows) and rewrite a box's payload in place, keeping its length, so no
offset elsewhere in the file (the chunk offsets in ``stco``) changes.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

CONTAINERS = {b"moov", b"trak", b"edts", b"mdia", b"minf", b"stbl"}  # the boxes on the paths the patches walk


def write_mp4(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """An mp4v video of RGB `frames` (none: a header without frames)."""
    height, width = frames[0].shape[:2] if frames else (128, 128)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for img in frames:
        writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def box_chain(data: bytes | bytearray, path: list[bytes]) -> list[tuple[int, int, int]]:
    """(offset, header length, size) of each box on `path` (e.g. ``[b"moov", b"trak", b"tkhd"]``), outermost first;
    the first box of each type is taken (one track)."""
    chain: list[tuple[int, int, int]] = []
    offset, end = 0, len(data)
    for kind in path:
        while True:
            if offset + 8 > end:
                raise KeyError(f"no {kind!r} box")
            size, found = struct.unpack(">I4s", data[offset : offset + 8])
            header = 8
            if size == 1:
                size, header = struct.unpack(">Q", data[offset + 8 : offset + 16])[0], 16
            elif size == 0:
                size = end - offset  # the box runs to the end of its parent
            if found == kind:
                break
            offset += size
        assert kind == path[-1] or kind in CONTAINERS, f"{kind!r} is not a container box"
        chain.append((offset, header, size))
        offset, end = offset + header, offset + size
    return chain


def find_box(data: bytes | bytearray, path: list[bytes]) -> tuple[int, int]:
    """(payload start, payload end) of the box at `path`."""
    offset, header, size = box_chain(data, path)[-1]
    return offset + header, offset + size


def replace_payload(path: Path, box_path: list[bytes], payload: bytes) -> Path:
    """Replace the payload of the box at `box_path`, resizing it and every box around it.

    Only for boxes inside ``moov`` stored after the media data (as VideoWriter writes them): then no chunk offset
    (``stco``) points past the change and none needs rewriting.
    """
    data = bytearray(path.read_bytes())
    chain = box_chain(data, box_path)
    assert box_path[0] == b"moov" and data.find(b"mdat") < chain[0][0], "moov after mdat"
    offset, header, size = chain[-1]
    grow = header + len(payload) - size
    data[offset + header : offset + size] = payload
    for box, box_header, box_size in chain:
        assert box_header == 8, "32-bit box sizes"
        data[box : box + 4] = struct.pack(">I", box_size + grow)
    path.write_bytes(bytes(data))
    return path


def set_display_matrix(path: Path, matrix: tuple[int, ...]) -> Path:
    """Write the 3x3 display matrix (16.16 / 2.30 fixed point, row by row) into the first track header."""
    data = bytearray(path.read_bytes())
    start, _ = find_box(data, [b"moov", b"trak", b"tkhd"])
    assert data[start] == 0, "a version-0 track header"
    at = start + 40  # after version/flags, times, track id, reserved, duration, reserved, layer, group, volume
    data[at : at + 36] = struct.pack(">9i", *matrix)
    path.write_bytes(bytes(data))
    return path


def set_frame_durations(path: Path, durations: list[int], *, whole: bool = True) -> Path:
    """Rewrite the first track's ``stts`` (time-to-sample) table so frame i lasts ``durations[i]`` media time
    units (`media_timescale` per second): one entry (count, duration) per run of equal durations.

    `whole` also sets the movie, track and media durations to the new total, as a muxer would; without it the file
    disagrees with itself (the header keeps the old length), as a careless editor leaves it."""
    box = [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stts"]
    data = path.read_bytes()
    start, _ = find_box(data, box)
    version_flags, count = struct.unpack(">II", data[start : start + 8])
    listed = sum(struct.unpack(">I", data[start + 8 + 8 * i : start + 12 + 8 * i])[0] for i in range(count))
    assert listed == len(durations), f"one duration per frame: the file lists {listed} frames"
    runs: list[list[int]] = []
    for duration in durations:
        if runs and runs[-1][1] == duration:
            runs[-1][0] += 1
        else:
            runs.append([1, duration])
    table = struct.pack(">II", version_flags, len(runs)) + b"".join(struct.pack(">II", n, d) for n, d in runs)
    replace_payload(path, box, table)
    if whole:
        _set_durations(path, sum(durations))
    return path


def _set_durations(path: Path, media_units: int) -> None:
    """Make the movie, track, edit-list and media durations (all version 0) agree with a new total, as a muxer
    writes them: a reader that trusts the header's duration must see the same length as the frame table."""
    data = bytearray(path.read_bytes())
    media_start, _ = find_box(data, [b"moov", b"trak", b"mdia", b"mdhd"])
    media_scale = struct.unpack(">I", data[media_start + 12 : media_start + 16])[0]
    movie_start, _ = find_box(data, [b"moov", b"mvhd"])
    movie_scale = struct.unpack(">I", data[movie_start + 12 : movie_start + 16])[0]
    movie_units = round(media_units * movie_scale / media_scale)
    data[media_start + 16 : media_start + 20] = struct.pack(">I", media_units)
    data[movie_start + 16 : movie_start + 20] = struct.pack(">I", movie_units)
    track_start, _ = find_box(data, [b"moov", b"trak", b"tkhd"])
    data[track_start + 20 : track_start + 24] = struct.pack(">I", movie_units)  # after version/flags, times, id, 0
    try:
        edit_start, _ = find_box(data, [b"moov", b"trak", b"edts", b"elst"])
    except KeyError:
        pass
    else:
        assert struct.unpack(">I", data[edit_start + 4 : edit_start + 8])[0] == 1, "one edit"
        data[edit_start + 8 : edit_start + 12] = struct.pack(">I", movie_units)
    for start in (media_start, movie_start, track_start):
        assert data[start] == 0, "version-0 headers"
    path.write_bytes(bytes(data))


def media_timescale(path: Path) -> int:
    """The first track's time units per second (its ``mdhd``)."""
    data = path.read_bytes()
    start, _ = find_box(data, [b"moov", b"trak", b"mdia", b"mdhd"])
    assert data[start] == 0, "a version-0 media header"
    return struct.unpack(">I", data[start + 12 : start + 16])[0]
