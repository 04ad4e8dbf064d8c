"""`Retriever`: pose search over a tiny index built here, checked against exact NumPy search and on real photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import data

from indexer.store import Store
from model.checkpoint import file_sha256
from model.data.errors import DataError
from model.data.images import read_image, write_image
from retrieval.hit_rules import HitRules
from retrieval.search import HIT_COLUMNS, Retriever
from tests.image_corpus import write_oriented
from tests.retrieval.conftest import save_tiny_model


def brute_force(base: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = base @ (query / np.linalg.norm(query))
    order = np.argsort(-sims, kind="stable")[:k]
    return sims[order], order


def test_vector_query_equals_brute_force(built, retriever):
    *_, vectors, ids = built
    query = np.random.default_rng(1).standard_normal(vectors.shape[1]).astype(np.float32)  # not unit length
    hits = retriever.search(query, k=7)
    scores, order = brute_force(vectors, query, 7)
    assert list(hits.columns) == HIT_COLUMNS
    assert hits["rank"].tolist() == list(range(1, 8))
    np.testing.assert_allclose(hits["score"], scores, atol=1e-5)
    assert np.all(np.diff(hits["score"]) <= 1e-7)  # descending
    assert np.all(np.diff(scores) < -1e-6)  # no near-ties in this seeded set, so the order is exact
    assert hits["id"].tolist() == ids[order].tolist()


def test_hits_carry_the_frames_metadata(built, retriever):
    root, _, _, frames, vectors, ids = built
    hits = retriever.search(vectors[5], k=3)
    top = hits.iloc[0]
    assert top["id"] == ids[5]
    assert (top["identity"], top["video"], top["frame"]) == tuple(frames.loc[5, ["identity", "video", "frame"]])
    assert (root / top["path"]).resolve() == Path(frames.loc[5, "path"])


def test_a_frame_of_the_index_finds_itself_first(built, retriever):
    *_, frames, _, ids = built
    img = read_image(frames.loc[9, "path"])  # a 32 px crop: nothing for the face detector, so crop=False
    hits = retriever.search(img, k=5, crop=False)
    assert hits["id"].iloc[0] == ids[9]
    assert hits["score"].iloc[0] == pytest.approx(1.0, abs=1e-5)
    by_path = retriever.search(frames.loc[9, "path"], k=5)  # auto: a frame of the index is not cropped again
    pd.testing.assert_frame_equal(by_path, hits)


def test_other_identities_drop_the_query_identity_and_still_return_k(built, retriever):
    *_, frames, vectors, _ = built
    identity = frames.loc[0, "identity"]
    plain = retriever.search(vectors[0], k=24)
    assert identity in set(plain["identity"])
    hits = retriever.search(vectors[0], k=10, other_identities=True, identity=identity)
    assert len(hits) == 10 and identity not in set(hits["identity"])
    # they are the best 10 of the other people, in order, re-ranked from 1
    expected = plain[plain["identity"] != identity].head(10)
    assert hits["id"].tolist() == expected["id"].tolist()
    assert hits["rank"].tolist() == list(range(1, 11))
    # asking for more than exist returns all the others, no more
    assert len(retriever.search(vectors[0], k=100, other_identities=True, identity=identity)) == 16


def test_other_identities_run_inside_the_search_and_caps_over_fetch(tmp_path, built):
    """Own identity crowds the nearest 40 frames: the identity filter is an ID selector in the one search (k asked,
    k found), where a cap per identity must over-fetch and widen until k survive."""
    *_, checkpoint, _, vectors, _ = built
    dim = vectors.shape[1]
    rng = np.random.default_rng(0)
    axis = np.eye(dim, dtype=np.float32)[0]
    near = axis + 0.01 * rng.standard_normal((40, dim)).astype(np.float32)  # identity "a": 40 frames near the query
    far = -axis + 0.01 * rng.standard_normal((5, dim)).astype(np.float32)  # "b" .. "f": a frame each, far away
    rows = pd.DataFrame(
        {
            "path": [f"x/v/{i:03d}.png" for i in range(45)],
            "identity": ["a"] * 40 + ["b", "c", "d", "e", "f"],
            "video": "v",
            "frame": range(45),
        }
    )
    with Store.create(tmp_path / "idx", dim=dim, checkpoint_sha256=file_sha256(checkpoint)) as store:
        store.add(rows, np.concatenate([near, far]))
    with Retriever(tmp_path / "idx", checkpoint, device="cpu") as r:
        calls = []
        search = r.store.search
        r.store.search = lambda q, k, id_filter=None: (
            calls.append((k, id_filter is not None)) or search(q, k, id_filter=id_filter)
        )
        hits = r.search(axis, k=5, other_identities=True, identity="a")
        assert sorted(hits["identity"]) == ["b", "c", "d", "e", "f"] and calls == [(5, True)]
        calls.clear()
        hits = r.search(axis, k=5, rules=HitRules(per_identity=1))
        assert sorted(hits["identity"]) == ["a", "b", "c", "d", "e"]
        assert calls == [(20, False), (45, False)]  # k x 4, then widened (capped at the index size)


def test_identity_comes_from_a_frame_path_of_the_index(built, retriever, tmp_path):
    root, index, checkpoint, frames, _, _ = built
    path = Path(frames.loc[2, "path"])
    identity = frames.loc[2, "identity"]
    hits = retriever.search(path, k=8, other_identities=True)
    assert len(hits) == 8 and identity not in set(hits["identity"])
    # a copy elsewhere with the same <identity>/<video>/<frame> tail is recognised by its tail...
    copy = tmp_path / "elsewhere" / Path(*path.parts[-3:])
    copy.parent.mkdir(parents=True)
    shutil.copy(path, copy)
    assert identity not in set(retriever.search(copy, k=8, other_identities=True)["identity"])
    # ...but not when the collection root is known, and then other_identities needs identity=
    with Retriever(index, checkpoint, device="cpu", collection=root) as exact:
        assert identity not in set(exact.search(path, k=8, other_identities=True)["identity"])
        with pytest.raises(ValueError, match="identity="):
            exact.search(copy, k=8, other_identities=True, crop=False)


def test_other_identities_without_a_known_identity_is_a_value_error(built, retriever):
    *_, vectors, _ = built
    with pytest.raises(ValueError, match="identity="):
        retriever.search(vectors[0], k=3, other_identities=True)


def test_a_real_photo_works_end_to_end(retriever, tmp_path):
    photo = tmp_path / "astronaut.png"
    write_image(photo, data.astronaut())
    hits = retriever.search(photo, k=6)
    assert len(hits) == 6 and list(hits.columns) == HIT_COLUMNS
    assert np.isfinite(hits["score"]).all() and np.all(np.diff(hits["score"]) <= 1e-7)
    from_array = retriever.search(data.astronaut(), k=6)  # the same photo as an array: cropped the same way
    pd.testing.assert_frame_equal(from_array, hits)


@pytest.mark.parametrize("orientation", range(2, 9))
def test_a_phone_photo_stored_turned_with_an_exif_tag_finds_what_the_upright_photo_finds(
    retriever, tmp_path, orientation
):
    """PNG keeps the pixels exact, so the hits must be identical, scores included; without the tag applied the
    face is sideways or mirrored, and is either not found or encoded as another pose."""
    upright = Image.fromarray(data.astronaut())
    upright.save(tmp_path / "upright.png")
    turned = write_oriented(tmp_path / "turned.png", upright, orientation)
    assert np.asarray(Image.open(turned)).tolist() != data.astronaut().tolist()  # stored otherwise than upright
    pd.testing.assert_frame_equal(retriever.search(turned, k=8), retriever.search(tmp_path / "upright.png", k=8))


def test_bad_image_files_are_data_errors_naming_the_file(retriever, tmp_path):
    missing = tmp_path / "missing.png"
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    faceless = tmp_path / "blank.png"
    write_image(faceless, np.full((128, 128, 3), 128, np.uint8))
    for path, reason in ((missing, "no such file"), (corrupt, "not an image"), (faceless, "no face found")):
        with pytest.raises(DataError, match=reason) as err:
            retriever.search(path, k=3)
        assert err.value.path == path


def test_checkpoint_of_another_model_is_refused(built, tmp_path):
    _, index, *_ = built
    other = save_tiny_model(tmp_path / "other.safetensors", seed=1)
    with pytest.raises(DataError, match="sha256") as err:
        Retriever(index, other, device="cpu")
    assert err.value.path == other


def test_bad_queries_are_value_errors(retriever):
    with pytest.raises(ValueError, match="length"):
        retriever.search(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="uint8"):
        retriever.search(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="k must"):
        retriever.search(np.ones(retriever.dim, np.float32), k=0)


def test_batch_equals_single(built, retriever, tmp_path):
    *_, frames, vectors, _ = built
    photo = tmp_path / "astronaut.png"
    write_image(photo, data.astronaut())
    queries = [vectors[3], frames.loc[11, "path"], photo, data.astronaut()]  # code, indexed frame, file, array
    batch = retriever.search_batch(queries, k=5)
    assert len(batch) == 4
    for got, query in zip(batch, queries):
        pd.testing.assert_frame_equal(got, retriever.search(query, k=5))
    identities = [frames.loc[3, "identity"], None, "sv0001", "sv0002"]  # None: looked up from the frame's path
    filtered = retriever.search_batch(queries, k=5, other_identities=True, identities=identities)
    for got, query, identity in zip(filtered, queries, identities):
        assert len(got) == 5
        pd.testing.assert_frame_equal(got, retriever.search(query, k=5, other_identities=True, identity=identity))
    assert frames.loc[11, "identity"] not in set(filtered[1]["identity"])


def test_hit_images_are_the_indexed_frames_read_from_the_recorded_root(built, retriever):
    root, _, _, frames, vectors, _ = built
    hits = retriever.search(vectors[3], k=4)
    images = retriever.hit_images(hits)
    for (_, hit), image in zip(hits.iterrows(), images):
        np.testing.assert_array_equal(image, read_image(root / hit["path"]))
    query = retriever.query_image(frames.loc[3, "path"])  # a frame of the index: not cropped again
    np.testing.assert_array_equal(query, read_image(frames.loc[3, "path"]))
