"""Building pose indexes from frame collections: counts, self-search, bad frames, atomic failure, `add`."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from indexer.build import add_to_index, build_index
from indexer.store import Store
from model.daegan import DAEGAN
from model.data.collection import load_frame
from model.data.dataset import to_square, to_tensor
from model.data.errors import DataError
from tests.indexer.conftest import FRAMES

FAST = {"workers": 0, "device": "cpu", "progress": False}


def _snapshot(index: Path) -> tuple[dict, dict, list]:
    """What a reader sees: FAISS file and manifest bytes, the info (less the build log), every frame row."""
    files = {f.name: f.read_bytes() for f in sorted(index.iterdir()) if f.suffix in (".faiss", ".json")}
    with Store.open(index) as store:
        info = {k: v for k, v in store.info().items() if k not in ("num_builds", "size_bytes")}
        rows = store.get(np.arange(1, len(store) + 1)).to_dict("records") if len(store) else []
    return files, info, rows


def test_build_indexes_every_frame_and_a_frame_finds_itself(synthvox, tiny_checkpoint, tmp_path):
    out = tmp_path / "idx"
    summary = build_index(synthvox, tiny_checkpoint, out, batch_size=5, **FAST)
    assert (summary.added, summary.skipped, summary.index_dir) == (FRAMES, [], out)
    assert summary.frames_per_s > 0
    model = DAEGAN.from_checkpoint(tiny_checkpoint)
    with Store.open(out) as store:
        info = store.info()
        assert (info["count"], info["num_frames"], info["num_identities"], info["num_videos"]) == (FRAMES, FRAMES, 3, 6)
        assert info["dim"] == model.pose_dim and store.verify() == []
        assert store.roots() == {"": synthvox.resolve()}
        paths = store.paths()
        assert "sv0001/v01/00002.png" in paths and all(not p.startswith("/") for p in paths)
        for frame_id in (1, 13, FRAMES):
            row = store.get([frame_id]).iloc[0]
            file, frame = store.frame_file(row["path"])  # the index records where its collection is
            assert file.is_file() and (row["width"], row["height"]) == (32, 32)
            code = model.encode_pose(to_tensor(to_square(load_frame(file, frame), model.size))[None]).numpy()
            scores, ids = store.search(code, k=3)
            assert ids[0][0] == frame_id and scores[0][0] == pytest.approx(1.0, abs=1e-4)


def test_reader_workers_give_the_same_index(synthvox, tiny_checkpoint, tmp_path):
    build_index(synthvox, tiny_checkpoint, tmp_path / "a", batch_size=4, **FAST)
    build_index(synthvox, tiny_checkpoint, tmp_path / "b", batch_size=7, workers=2, device="cpu", progress=False)
    with Store.open(tmp_path / "a") as a, Store.open(tmp_path / "b") as b:
        ids = np.arange(1, FRAMES + 1)
        assert a.get(ids)["path"].tolist() == b.get(ids)["path"].tolist()


def test_corrupt_frame_is_skipped_and_listed_while_the_rest_is_indexed(synthvox, tiny_checkpoint, tmp_path):
    bad = synthvox / "sv0001" / "v00" / "00002.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a picture")
    summary = build_index(synthvox, tiny_checkpoint, tmp_path / "idx", batch_size=4, **FAST)
    assert summary.added == FRAMES - 1
    assert [path for path, _ in summary.skipped] == [str(bad)]
    assert "decode" in summary.skipped[0][1] or "corrupt" in summary.skipped[0][1]
    with Store.open(tmp_path / "idx") as store:
        assert len(store) == FRAMES - 1 and store.verify() == []
        assert "sv0001/v00/00002.png" not in store.paths()
        assert "sv0001/v00/00003.png" in store.paths()


def test_failed_build_leaves_the_previous_index_unchanged(synthvox, tiny_checkpoint, tmp_path, monkeypatch):
    extra = tmp_path / "extra"
    (extra / "sv0002").mkdir(parents=True)
    shutil.move(synthvox / "sv0002" / "v01", extra / "sv0002" / "v01")
    out = tmp_path / "idx"
    build_index(synthvox, tiny_checkpoint, out, **FAST)
    before = _snapshot(out)
    original, calls = DAEGAN.encode_pose, []

    def failing(self, frames, **kwargs):
        calls.append(len(frames))
        if len(calls) > 1:
            raise RuntimeError("out of memory, say")
        return original(self, frames, **kwargs)

    monkeypatch.setattr(DAEGAN, "encode_pose", failing)
    with pytest.raises(RuntimeError, match="out of memory"):
        build_index(extra, tiny_checkpoint, out, batch_size=2, **FAST)
    assert len(calls) == 2  # it failed midway, after a batch went into the build
    assert _snapshot(out) == before
    with Store.open(out) as store:
        assert len(store) == FRAMES - 4 and store.verify() == []
        scores, ids = store.search(np.ones((1, store.dim), np.float32), k=1)
        assert len(ids[0]) == 1
    with pytest.raises(RuntimeError):  # a first build that fails leaves no index at all
        build_index(extra, tiny_checkpoint, tmp_path / "fresh", batch_size=2, **FAST)
    assert not (tmp_path / "fresh").exists()


def test_add_encodes_only_new_videos_and_refuses_another_checkpoint(
    synthvox, tiny_checkpoint, other_checkpoint, tmp_path
):
    held = tmp_path / "held"
    shutil.move(synthvox / "sv0002" / "v01", held)
    out = tmp_path / "idx"
    assert build_index(synthvox, tiny_checkpoint, out, **FAST).added == FRAMES - 4
    shutil.move(held, synthvox / "sv0002" / "v01")
    with pytest.raises(DataError, match="already holds 20 of these frames"):
        build_index(synthvox, tiny_checkpoint, out, **FAST)
    summary = add_to_index(synthvox, out, tiny_checkpoint, **FAST)
    assert (summary.added, summary.already_indexed) == (4, FRAMES - 4)
    assert add_to_index(synthvox, out, tiny_checkpoint, **FAST).added == 0
    before = _snapshot(out)
    with pytest.raises(DataError, match="differs from the checkpoint"):
        add_to_index(synthvox, out, other_checkpoint, **FAST)
    assert _snapshot(out) == before
    with Store.open(out) as store:
        info = store.info()
        # build, add, empty add; refusals start none
        assert (info["count"], info["num_videos"], info["num_builds"]) == (FRAMES, 6, 3)
        assert store.verify() == [] and "sv0002/v01/00003.png" in store.paths()


def test_several_roots_are_prefixed_by_their_names_and_resolve(synthvox, tiny_checkpoint, tmp_path):
    second = Path(shutil.copytree(synthvox, tmp_path / "more"))
    summary = build_index([synthvox, second], tiny_checkpoint, tmp_path / "idx", **FAST)
    assert summary.added == 2 * FRAMES
    with Store.open(tmp_path / "idx") as store:
        paths = store.paths()
        assert store.roots() == {"synthvox": synthvox.resolve(), "more": second.resolve()}
        assert store.frame_file("more/sv0000/v00/00000.png") == (second.resolve() / "sv0000/v00/00000.png", 0)
        for escape in ("more/../../etc/passwd", "../synthvox/sv0000/v00/00000.png", "nowhere/x.png"):
            with pytest.raises(DataError):
                store.frame_file(escape)
    assert {"synthvox/sv0000/v00/00000.png", "more/sv0000/v00/00000.png"} <= paths
    third = Path(shutil.copytree(synthvox, tmp_path / "third"))
    summary = add_to_index([third, second], tmp_path / "idx", tiny_checkpoint, **FAST)  # recorded roots keep prefixes
    assert (summary.added, summary.already_indexed) == (FRAMES, FRAMES)
    with Store.open(tmp_path / "idx") as store:
        assert store.frame_file("third/sv0001/v00/00002.png") == (third.resolve() / "sv0001/v00/00002.png", 0)
    clash = tmp_path / "elsewhere" / "more"
    shutil.copytree(synthvox, clash)
    with pytest.raises(DataError, match="already holds a root named 'more'"):
        add_to_index([clash], tmp_path / "idx", tiny_checkpoint, **FAST)
    with pytest.raises(DataError, match="share this folder name"):
        build_index([synthvox, synthvox], tiny_checkpoint, tmp_path / "idx2", **FAST)


def test_video_frames_are_stored_with_their_frame_number(video_tree, tiny_checkpoint, tmp_path):
    summary = build_index(video_tree, tiny_checkpoint, tmp_path / "idx", fps=10, **FAST)
    with Store.open(tmp_path / "idx") as store:
        rows = store.get(np.arange(1, summary.added + 1))
        assert summary.added == 10 + 5 + 10 and rows["path"].is_unique
        path = rows["path"].iloc[1]
        assert path.startswith("id10001/1zcIwhmdeo4/00001.mp4#")
        file, frame = store.frame_file(path)
    assert file == video_tree.resolve() / "id10001/1zcIwhmdeo4/00001.mp4" and frame == rows["frame"].iloc[1] > 0


def test_roots_given_relative_to_the_working_folder(synthvox, tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(synthvox.parent)
    summary = build_index([Path(synthvox.name)], tiny_checkpoint, Path("idx"), **FAST)
    assert summary.added == FRAMES
    with Store.open(tmp_path / "idx") as store:
        assert "sv0000/v00/00000.png" in store.paths()
