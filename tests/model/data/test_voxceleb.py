"""VoxCeleb facts: meta table, face tracks (VoxCeleb1 pixels, VoxCeleb2 fractions), official test identities."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.data.errors import DataError
from model.data.voxceleb import is_test_identity, read_face_track, read_meta

VOX1_TRACK = (
    "Identity  : \tid10001\n"
    "Reference : \t1zcIwhmdeo4\n"
    "Offset    : \t1\n"
    "FV Conf   : \t16.647\t(1)\n"
    "ASD Conf  : \t4.465\n"
    "\n"
    "FRAME \tX \tY \tW \tH \n"
    "000245 \t0361 \t0097 \t0215 \t0215 \n"
    "000246 \t0362 \t0098 \t0214 \t0214 \n"
)
VOX2_TRACK = VOX1_TRACK.replace("0361 \t0097 \t0215 \t0215", "0.500 \t0.250 \t0.200 \t0.400").replace(
    "0362 \t0098 \t0214 \t0214", "0.510 \t0.250 \t0.200 \t0.400"
)


def test_vox1_track_in_pixels(tmp_path: Path) -> None:
    path = tmp_path / "00001.txt"
    path.write_text(VOX1_TRACK)
    track = read_face_track(path)
    assert track["frame"].tolist() == [245, 246]
    assert track.iloc[0][["x", "y", "w", "h"]].tolist() == [361, 97, 215, 215]


def test_vox2_track_in_fractions_needs_the_frame_size(tmp_path: Path) -> None:
    path = tmp_path / "00001.txt"
    path.write_text(VOX2_TRACK)
    with pytest.raises(DataError, match="frame size is needed"):
        read_face_track(path)
    track = read_face_track(path, frame_size=(224, 100))
    assert track.iloc[0][["x", "y", "w", "h"]].tolist() == pytest.approx([112, 25, 44.8, 40])


@pytest.mark.parametrize("text", ["", "Identity : x\n\n\n\n\n\nA B C\n1 2 3\n", "just\nsome\ntext\n"])
def test_malformed_tracks(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        read_face_track(path)
    assert err.value.path == path


def test_meta_table(tmp_path: Path) -> None:
    path = tmp_path / "vox1_meta.csv"
    path.write_text("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\nid10270\tEamon_Holmes. \tm\tIreland\ttest\n")
    meta = read_meta(path)
    assert meta.iloc[0].to_dict() == {
        "id": "id10270",
        "name": "Eamon_Holmes",
        "gender": "m",
        "nationality": "Ireland",
        "set": "test",
    }
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match="missing columns"):
        read_meta(path)


def test_official_test_identities() -> None:
    test_ids = [f"id{n}" for n in range(10001, 11252) if is_test_identity(f"id{n}")]
    assert len(test_ids) == 40 and test_ids[0] == "id10270" and test_ids[-1] == "id10309"
    assert is_test_identity("Eartha_Kitt") and not is_test_identity("A.J._Buckley")
