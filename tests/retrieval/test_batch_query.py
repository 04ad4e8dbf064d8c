"""Many queries in one process (issue 16): `index query DIR/` and `--from-csv`, CSV or Parquet, bad images skipped
and listed, the same hits as one `index query` per photo."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from retrieval.batch_query import BATCH_COLUMNS
from tests.retrieval.test_cli import query
from tests.test_bad_faces import face

K = 3


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three SynthVox faces of people the index does not hold, a text file named .jpg, a hidden photo."""
    folder = tmp_path_factory.mktemp("photos")
    for i in range(3):
        Image.fromarray(face(10 + i, 128)).save(folder / f"person{i}.png")
    (folder / "sub").mkdir()
    (folder / "sub" / "person0.png").write_bytes((folder / "person0.png").read_bytes())  # recursion: a 4th query
    (folder / "notes.jpg").write_text("shopping list\n")
    (folder / ".hidden.png").write_bytes((folder / "person1.png").read_bytes())
    return folder


def test_a_folder_gives_one_row_per_hit_and_the_hits_of_single_queries(runner, index, photos, tmp_path):
    out = tmp_path / "hits.csv"
    result = query(runner, index, str(photos), "-k", str(K), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"skipped: {photos / 'notes.jpg'}: not an image Pillow can decode" in result.stderr
    assert f"answered 4 of 5 images (1 skipped): {4 * K} hits to {out}" in result.stdout
    hits = pd.read_csv(out, dtype={"identity": str, "video": str})
    assert list(hits.columns) == BATCH_COLUMNS and len(hits) == 4 * K
    names = ["person0.png", "person1.png", "person2.png", "sub/person0.png"]
    assert hits["query"].unique().tolist() == [str(photos / n) for n in names]  # sorted, hidden file left out
    assert (hits["faces"] == 1).all()
    for name in names:  # the same hits as one `index query` of that photo
        single = json.loads(query(runner, index, str(photos / name), "-k", str(K), "--json").stdout)
        mine = hits[hits["query"] == str(photos / name)]
        assert mine["path"].tolist() == [h["path"] for h in single]
        assert mine["score"].tolist() == pytest.approx([h["score"] for h in single], abs=1e-4)


def test_parquet_holds_what_csv_holds(runner, index, photos, tmp_path):
    for name in ("hits.csv", "hits.parquet"):
        result = query(runner, index, str(photos), "-k", str(K), "--out", str(tmp_path / name), "--per-video", "1")
        assert result.exit_code == 0, result.output
    csv = pd.read_csv(tmp_path / "hits.csv", dtype={"identity": str, "video": str})
    parquet = pd.read_parquet(tmp_path / "hits.parquet")
    pd.testing.assert_frame_equal(csv, parquet, check_dtype=False, atol=1e-6)
    assert not csv.duplicated(["query", "identity", "video"]).any()  # --per-video applies to every query


def test_a_csv_of_paths_with_identities_filters_each_querys_own(runner, index):
    """Paths relative to the CSV's folder; each query's identity from its row drops that person's frames."""
    root = index[0]
    frames = sorted(root.glob("sv*/v*/*.png"))[::7]
    table = root.parent / "queries.csv"
    pd.DataFrame(
        {"path": [f.relative_to(root.parent).as_posix() for f in frames], "identity": [f.parts[-3] for f in frames]}
    ).to_csv(table, index=False)
    result = query(runner, index, "--from-csv", str(table), "-k", str(K), "--other-identities")
    assert result.exit_code == 0, result.output
    hits = pd.read_csv(io.StringIO(result.stdout), dtype={"identity": str, "video": str})
    assert len(hits) == len(frames) * K
    for frame in frames:
        mine = hits[hits["query"] == str(frame)]
        assert len(mine) == K and frame.parts[-3] not in set(mine["identity"])


def test_bad_batches_are_one_line(runner, index, photos, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = query(runner, index, str(empty))
    assert result.exit_code == 2 and result.stderr.startswith(f"Error: {empty}: no images in this folder")
    table = tmp_path / "bad.csv"
    table.write_text("file\nx.png\n")
    result = query(runner, index, "--from-csv", str(table))
    assert result.exit_code == 2 and result.stderr.strip() == f"Error: {table}: needs a 'path' column; it has file"
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "a.png").write_text("no")
    result = query(runner, index, str(only_bad))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == f"Error: {only_bad}: none of its 1 images could be searched"
    for args, reason in (
        [[str(photos), "--grid", "g.png"], "--grid draws one query"],
        [[str(photos / "person0.png"), "--out", "h.csv"], "--out writes many"],
        [[str(photos), "--from-csv", str(table)], "give one IMAGE"],
        [[str(photos), "--out", str(tmp_path / "hits.txt")], "write hits to a .csv or .parquet"],
    ):
        result = query(runner, index, *args)
        assert result.exit_code == 2 and reason in result.stderr, (args, result.output)
    assert not (tmp_path / "hits.txt").exists()


def test_many_queries_answer_in_one_process(runner: CliRunner, index, photos):
    """Without --out the hits are CSV on stdout and the count on stderr (a pipe gets the table alone)."""
    result = query(runner, index, str(photos), "-k", "1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == ",".join(BATCH_COLUMNS) and len(lines) == 1 + 4
    assert "answered 4 of 5 images (1 skipped)" in result.stderr
