"""Does the pose code hold pose and only pose? Retrieval across identities, identity leakage and linear probes
(paper sec. 4.3 "Image retrieval" and Fig. 8; DESIGN.md "Evaluation").

- `retrieval`: for each query, the top-k frames by cosine of pose codes among *other* identities; the error of
  their pose values against the query's, beside k frames drawn at random from the same candidates and the k
  candidates nearest in pose values themselves (the oracle: the best any code could do with these candidates).
  Pose values are SynthVox's labels, or on real frames the landmark model's measurements (NaN where no face).
- `leakage`: the unfiltered top-k (every identity; the query's own video left out, whose neighbouring frames share
  its pose as well as its identity): the share with the query's identity, beside the chance share in that pool and
  the share the oracle's k nearest-in-pose have.
- `gap_closed`: how much of the way from random hits to the oracle's the model's hits go, per parameter or over
  several (their errors in standard deviations, averaged).
- `probes`: ridge regression of each pose parameter from the pose code and from the embedded face, scored on
  identities held out of the fit (R^2); multinomial logistic regression of the identity from each, scored on
  videos held out of the fit (accuracy, beside the majority-class rate). Disentangled: pose easy from the code and
  hard from the face; identity near chance from the code and easy from the face. Each probe reads its own features:
  the identity probe may read an image through an identity reader (the evaluation gives it dlib's face-recognition
  descriptor), whose NaN rows (no face found) are left out of the fit and count as misses in the test.

Choices: pose values are compared per parameter in their own units; the oracle and the single "normalised" figure
divide each parameter by its standard deviation over the frames, so degrees and [0, 1] expressions weigh alike.
Features are standardised before each probe; ridge's penalty is chosen among `probe_alphas` by cross-validation
over folds of whole identities (the fit must generalise to new people, as the test does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.evaluation.results import LeakageResult

GAP_EPS = 1e-12  # a random-to-oracle span below this leaves the gap closed undefined


@dataclass
class RetrievalResult:
    """Mean absolute pose-value error of the top-k, per parameter, for the model, random k and the oracle."""

    queries: np.ndarray  # (Q,) rows that were queries (those with at least k candidates)
    hits: np.ndarray  # (Q, k) rows of the model's hits, best first
    errors: dict[str, np.ndarray]  # "model" / "random" / "oracle" -> (P,) mean |hit - query| per parameter
    normalised: dict[str, float]  # the same, each parameter divided by its std, averaged over parameters
    scale: np.ndarray  # (P,) each parameter's std over the valid frames (1 where constant)


def retrieval(
    codes: np.ndarray,
    values: np.ndarray,
    identities: np.ndarray,
    queries: np.ndarray,
    *,
    k: int,
    rng: np.random.Generator,
    candidates: np.ndarray | None = None,
) -> RetrievalResult:
    """Top-k retrieval among other identities. codes: (N, D) unit rows; values: (N, P) pose values, NaN rows are
    neither queries nor hits; identities: (N,); queries: rows to query; candidates: (N,) bool, rows allowed as
    hits (default all)."""
    n = len(codes)
    valid = ~np.isnan(values).any(axis=1)
    allowed = valid if candidates is None else (valid & candidates)
    scale = _scale(values[valid])
    kept, hits, model, random, oracle = [], [], [], [], []
    for q in queries:
        if not valid[q]:
            continue
        pool = np.flatnonzero(allowed & (identities != identities[q]))
        if len(pool) < k:
            continue
        sims = codes[pool] @ codes[q]
        top = pool[np.argsort(-sims, kind="stable")[:k]]
        drawn = rng.choice(pool, size=k, replace=False)
        gaps = (np.abs(values[pool] - values[q]) / scale).sum(axis=1)
        best = pool[np.argsort(gaps, kind="stable")[:k]]
        kept.append(q)
        hits.append(top)
        for store, rows in ((model, top), (random, drawn), (oracle, best)):
            store.append(np.abs(values[rows] - values[q]).mean(axis=0))
    assert n == len(values) == len(identities)
    if not kept:
        return RetrievalResult(np.zeros(0, int), np.zeros((0, k), int), {}, {}, scale)
    errors = {
        name: np.mean(store, axis=0) for name, store in (("model", model), ("random", random), ("oracle", oracle))
    }
    return RetrievalResult(
        np.array(kept), np.stack(hits), errors, {name: float((e / scale).mean()) for name, e in errors.items()}, scale
    )


def gap_closed(found: RetrievalResult, columns: list[int] | None = None) -> np.ndarray | float:
    """(random - model) / (random - oracle) of the retrieval error: per parameter `(P,)` when `columns` is None,
    else one figure for the error over those parameters (each divided by its std, averaged). 0 = no better than
    random hits, 1 = as good as the oracle; NaN where the oracle does no better than random."""
    e = found.errors
    if columns is None:
        random, model, oracle = e["random"], e["model"], e["oracle"]
    else:
        random, model, oracle = ((e[n] / found.scale)[columns].mean() for n in ("random", "model", "oracle"))
    span = np.asarray(random - oracle, dtype=np.float64)
    gap = np.where(span > GAP_EPS, (random - model) / np.where(span > GAP_EPS, span, 1.0), np.nan)
    return gap if columns is None else float(gap)


def leakage(
    codes: np.ndarray, values: np.ndarray, identities: np.ndarray, videos: np.ndarray, queries: np.ndarray, *, k: int
) -> LeakageResult:
    """Share of the unfiltered top-k with the query's identity (its own video left out), beside chance and the
    oracle (module docstring)."""
    scale = _scale(values)
    model, chance, oracle = [], [], []
    for q in queries:
        pool = np.flatnonzero(videos != videos[q])
        if len(pool) < k:
            continue
        same = identities[pool] == identities[q]
        top = np.argsort(-(codes[pool] @ codes[q]), kind="stable")[:k]
        best = np.argsort((np.abs(values[pool] - values[q]) / scale).sum(axis=1), kind="stable")[:k]
        model.append(same[top].mean())
        oracle.append(same[best].mean())
        chance.append(same.mean())
    return LeakageResult(float(np.mean(model)), float(np.mean(chance)), float(np.mean(oracle)), len(model))


def _scale(values: np.ndarray) -> np.ndarray:
    """Per-parameter standard deviation, 1 where a parameter does not vary (it then adds nothing)."""
    std = values.std(axis=0)
    return np.where(std > 0, std, 1.0)


def _ridge(x: np.ndarray, y: np.ndarray, groups: np.ndarray, *, alphas: tuple[float, ...], folds: int):
    """A standardise-then-ridge pipeline fitted on (x, y), its penalty chosen by cross-validation over folds of
    whole groups (identities): frames of one video are near-duplicates, so leave-one-out would pick too small a
    penalty for new people."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    splits = min(folds, len(set(groups)))
    best = alphas[0]
    if splits >= 2:
        scores = [
            cross_val_score(
                make_pipeline(StandardScaler(), Ridge(alpha=a)), x, y, groups=groups, cv=GroupKFold(n_splits=splits)
            ).mean()
            for a in alphas
        ]
        best = alphas[int(np.argmax(scores))]
    return make_pipeline(StandardScaler(), Ridge(alpha=best)).fit(x, y)


def probes(
    features: dict[str, np.ndarray],
    identity_features: dict[str, np.ndarray],
    poses: np.ndarray,
    pose_names: tuple[str, ...],
    identities: np.ndarray,
    videos: np.ndarray,
    *,
    alphas: tuple[float, ...],
    folds: int,
    test_fraction: float,
    c: float,
    max_iter: int,
    rng: np.random.Generator,
) -> dict[str, object]:
    """Linear probes of pose from each of `features` and of identity from each of `identity_features` (name ->
    (N, F); NaN rows: nothing to read, a miss); module docstring."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    result: dict[str, object] = {}
    names = np.array(sorted(set(identities)))
    num_test = min(max(1, round(len(names) * test_fraction)), len(names) - 1)
    if len(names) >= 2:
        held = set(rng.choice(names, size=num_test, replace=False))
        test = np.array([i in held for i in identities])
        result["pose_identities"] = {"train": len(names) - num_test, "test": num_test}
        for name, x in features.items():
            fit = _ridge(x[~test], poses[~test], identities[~test], alphas=alphas, folds=folds)
            r2 = r2_score(poses[test], fit.predict(x[test]), multioutput="raw_values")
            r2[poses[test].std(axis=0) == 0] = np.nan  # a parameter constant in the held-out frames: undefined
            result[f"pose_r2_from_{name}"] = dict(zip(pose_names, map(float, r2)))
    test = np.zeros(len(identities), bool)
    for name in names:  # one held-out video per identity that has two or more
        own = sorted(set(videos[identities == name]))
        if len(own) >= 2:
            test |= videos == own[rng.integers(len(own))]
    if test.any():
        _, counts = np.unique(identities[test], return_counts=True)
        result["identity_chance"] = float(counts.max() / test.sum())
        result["identity_classes"] = len(names)
        for name, x in identity_features.items():
            readable = ~np.isnan(x).any(axis=1)
            fitted, asked = ~test & readable, test & readable
            hits = np.zeros(len(x), bool)
            if len(set(identities[fitted])) >= 2 and asked.any():  # else nothing to tell apart, or to ask about
                fit = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
                fit.fit(x[fitted], identities[fitted])
                hits[asked] = fit.predict(x[asked]) == identities[asked]
            result[f"identity_accuracy_from_{name}"] = float(hits[test].mean())
    return result
