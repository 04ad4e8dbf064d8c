"""Retrieval, leakage and probes on pose codes whose content is known: pure pose, pure identity, noise."""

from __future__ import annotations

import numpy as np
import pytest

from model.evaluation.disentanglement import RetrievalResult, gap_closed, leakage, probes, retrieval

IDENTITIES, VIDEOS, FRAMES = 6, 2, 20


@pytest.fixture
def table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poses (N, 3), identities (N,), videos (N,) of 6 identities x 2 videos x 20 frames."""
    rng = np.random.default_rng(0)
    n = IDENTITIES * VIDEOS * FRAMES
    poses = rng.uniform(-1, 1, (n, 3))
    identities = np.repeat(np.arange(IDENTITIES), VIDEOS * FRAMES)
    videos = np.repeat(np.arange(IDENTITIES * VIDEOS), FRAMES)
    return poses, identities, videos


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _pose_code(poses: np.ndarray) -> np.ndarray:
    """A code holding the pose only: cosine similarity falls with pose distance."""
    angles = np.concatenate([np.cos(poses), np.sin(poses)], axis=1)  # (N, 6), each pair on a circle
    return _unit(angles)


def test_a_pose_code_retrieves_like_the_oracle_and_beats_random(table) -> None:
    poses, identities, _ = table
    found = retrieval(
        _pose_code(poses), poses, identities, np.arange(0, len(poses), 3), k=5, rng=np.random.default_rng(1)
    )
    assert found.hits.shape == (len(found.queries), 5)
    assert all((identities[found.hits[i]] != identities[q]).all() for i, q in enumerate(found.queries))
    assert found.normalised["oracle"] <= found.normalised["model"] < 0.5 * found.normalised["random"]


def test_an_identity_code_leaks_and_retrieves_no_better_than_random(table) -> None:
    poses, identities, videos = table
    rng = np.random.default_rng(2)
    code = _unit(np.eye(IDENTITIES)[identities] + 0.01 * rng.normal(size=(len(poses), IDENTITIES)))
    queries = np.arange(0, len(poses), 3)
    found = retrieval(code, poses, identities, queries, k=5, rng=rng)
    assert found.normalised["model"] > 0.8 * found.normalised["random"]
    leak = leakage(code, poses, identities, videos, queries, k=5)
    assert leak.model == 1.0 and leak.chance == pytest.approx(FRAMES / (len(poses) - FRAMES))
    clean = leakage(_pose_code(poses), poses, identities, videos, queries, k=5)
    assert clean.model < 0.3 and clean.oracle < 0.3


def test_nan_rows_are_never_queries_or_hits(table) -> None:
    poses, identities, _ = table
    values = poses.copy()
    values[::2] = np.nan
    found = retrieval(_pose_code(poses), values, identities, np.arange(len(poses)), k=3, rng=np.random.default_rng(0))
    assert (found.queries % 2 == 1).all() and (found.hits % 2 == 1).all()


def test_probes_read_pose_from_a_pose_code_and_identity_from_a_face(table) -> None:
    poses, identities, videos = table
    rng = np.random.default_rng(3)
    face = np.eye(IDENTITIES)[identities] + 0.05 * rng.normal(size=(len(poses), IDENTITIES))
    code = poses + 0.01 * rng.normal(size=poses.shape)
    unreadable = face.copy()
    unreadable[::2] = np.nan  # a reader that found no face in every other image
    result = probes(
        {"pose_code": code, "face": face},
        {"pose_code": code, "face": face, "half_read": unreadable},
        poses,
        ("a", "b", "c"),
        identities,
        videos,
        alphas=(0.1, 1.0, 10.0),
        folds=3,
        test_fraction=0.34,
        c=1.0,
        max_iter=2000,
        rng=np.random.default_rng(4),
    )
    assert min(result["pose_r2_from_pose_code"].values()) > 0.95
    assert max(result["pose_r2_from_face"].values()) < 0.2
    assert result["identity_accuracy_from_face"] == 1.0
    assert result["identity_accuracy_from_half_read"] == pytest.approx(0.5, abs=0.1)  # the unread count as misses
    assert "pose_r2_from_half_read" not in result
    assert result["identity_accuracy_from_pose_code"] < 0.5
    assert result["identity_chance"] == pytest.approx(1 / IDENTITIES)


def test_gap_closed_per_parameter_and_over_several() -> None:
    errors = {
        "random": np.array([20.0, 0.5, 0.3]),
        "model": np.array([6.0, 0.5, 0.1]),
        "oracle": np.array([6.0, 0.1, 0.3]),
    }
    found = RetrievalResult(np.arange(3), np.zeros((3, 5), int), errors, {}, scale=np.array([10.0, 0.5, 1.0]))
    per = gap_closed(found)
    assert per[0] == pytest.approx(1.0) and per[1] == pytest.approx(0.0)  # (20 - 6) / (20 - 6), (0.5 - 0.5) / 0.4
    assert np.isnan(per[2])  # the oracle no better than random: undefined, even where the model beats both
    # over parameters 0 and 1 in std units: random (2 + 1) / 2, model (0.6 + 1) / 2, oracle (0.6 + 0.2) / 2
    assert gap_closed(found, [0, 1]) == pytest.approx((1.5 - 0.8) / (1.5 - 0.4))
