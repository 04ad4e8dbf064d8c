"""What VoxCeleb looks like on people's disks: the identity table, face tracks, and the official test split.

Facts encoded here (VoxCeleb1 as downloaded; Nagrani et al. 2017):
- `vox1_meta.csv` is tab-separated with the columns "VoxCeleb1 ID, VGGFace1 ID, Gender, Nationality, Set"; the
  VGGFace1 ID is the person's name, the folder name of the face-crop release. Names may carry trailing spaces or
  dots in one place and not the other, so names are compared after stripping both.
- The face-crop release names frames with 7 digits: the original 25 fps frame number, sampled at 1 fps.
- The annotation release has `txt/<id>/<ytid>/<00001>.txt` face tracks: 5 header lines, a blank line, a
  `FRAME X Y W H` header row, then one tab-separated row per 25 fps frame; boxes are pixels in VoxCeleb1 and
  fractions of the frame in VoxCeleb2.
- The official test identities are the 40 speakers whose names begin with "E", ids id10270–id10309.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from model.data.errors import DataError

VOX_FPS = 25.0
FACE_CROP_FRAME_DIGITS = 7
TEST_ID_RANGE = (10270, 10309)
META_COLUMNS = ["VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set"]
TRACK_HEADER_LINES = 6  # 5 header lines and the blank line before the FRAME X Y W H row

_VOX_ID = re.compile(r"^id(\d{5})$")


def normalise_name(name: str) -> str:
    """A person's name as a matching key: surrounding whitespace and trailing dots removed."""
    return name.strip().rstrip(".").strip()


def read_meta(path: Path) -> pd.DataFrame:
    """Read `vox1_meta.csv`: one row per identity with columns id, name, gender, nationality, set."""
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, skipinitialspace=True)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot read VoxCeleb1 meta table ({err.__class__.__name__})") from err
    table.columns = [c.strip() for c in table.columns]
    missing = [c for c in META_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(path, f"not a vox1_meta.csv: missing columns {', '.join(missing)}")
    meta = pd.DataFrame(
        {
            "id": table["VoxCeleb1 ID"].str.strip(),
            "name": table["VGGFace1 ID"].map(normalise_name),
            "gender": table["Gender"].str.strip(),
            "nationality": table["Nationality"].str.strip(),
            "set": table["Set"].str.strip(),
        }
    )
    return meta


def is_test_identity(identity: str) -> bool:
    """Whether an identity (a VoxCeleb1 id like ``id10270`` or a name) is in VoxCeleb1's official test set."""
    match = _VOX_ID.match(identity)
    if match:
        return TEST_ID_RANGE[0] <= int(match.group(1)) <= TEST_ID_RANGE[1]
    return normalise_name(identity).startswith("E")


def read_face_track(path: Path, frame_size: tuple[int, int] | None = None) -> pd.DataFrame:
    """Read one face track file into pixel boxes.

    Returns a DataFrame with columns frame (int, 25 fps frame number), x, y, w, h (float pixels, top-left corner).
    `frame_size` is (width, height); it is needed only for VoxCeleb2 tracks, whose boxes are fractions.
    """
    try:
        track = pd.read_csv(path, sep=r"\s+", skiprows=TRACK_HEADER_LINES, dtype=float, engine="python")
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, UnicodeDecodeError) as err:
        raise DataError(path, f"not a VoxCeleb face track ({err.__class__.__name__}: {err})") from err
    track.columns = [c.strip().lower() for c in track.columns]
    if list(track.columns) != ["frame", "x", "y", "w", "h"]:
        raise DataError(path, f"not a VoxCeleb face track: expected columns FRAME X Y W H, got {list(track.columns)}")
    if track.empty:
        raise DataError(path, "face track has no rows")
    boxes = track[["x", "y", "w", "h"]]
    if (boxes.to_numpy() <= 1.0).all():  # VoxCeleb2: fractions of the frame
        if frame_size is None:
            raise DataError(path, "face track holds fractional (VoxCeleb2) boxes; the frame size is needed")
        width, height = frame_size
        track[["x", "w"]] *= width
        track[["y", "h"]] *= height
    track["frame"] = track["frame"].astype(int)
    return track.reset_index(drop=True)
