"""A deterministic train/test split by identity: nobody in the test set was seen in training.

- VoxCeleb1 collections use the official test identities (the 40 speakers whose names begin with "E",
  ids id10270–id10309), so figures are comparable with the paper's Table 1.
- Identities matching a `hold_out` pattern (shell-style, e.g. ``orl_s3[1-9]``) are test identities of any collection:
  whole people a run promises never to see (issue 11: ORL s31-s40 stay out of the shipped model's training).
- Any other collection holds out a seeded fraction of its identities: identities are ordered by a hash of
  (seed, identity) and the first ``round(n * fraction)`` are the test set (at least one when there are two or
  more). The hash, unlike a shuffle, puts an identity in the same order whatever else the collection holds.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Sequence

import pandas as pd

from model.data.voxceleb import is_test_identity

TRAIN, TEST = "train", "test"
VOXCELEB_LAYOUTS = ("voxceleb1-crops",)


def _rank_key(seed: int, identity: str) -> str:
    return hashlib.sha256(f"{seed}:{identity}".encode()).hexdigest()


def held_out_identities(identities: list[str], *, test_fraction: float, seed: int) -> set[str]:
    """The seeded test identities of a non-VoxCeleb collection."""
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    unique = sorted(set(identities))
    count = round(len(unique) * test_fraction)
    if test_fraction > 0 and len(unique) >= 2:
        count = min(max(count, 1), len(unique) - 1)
    return set(sorted(unique, key=lambda i: _rank_key(seed, i))[:count])


def split_by_identity(
    frames: pd.DataFrame, *, test_fraction: float = 0.1, seed: int = 0, hold_out: Sequence[str] = ()
) -> pd.Series:
    """ "train" or "test" for each row of a frame table (as `read_collection` returns), split by identity.

    VoxCeleb1 face crops (by layout) use the official test identities; everything else a seeded fraction; an
    identity matching any `hold_out` pattern is a test identity in every case.
    """
    is_vox = frames["layout"].isin(VOXCELEB_LAYOUTS)
    split = pd.Series(TRAIN, index=frames.index, dtype=object)
    split[is_vox & frames["identity"].map(is_test_identity)] = TEST
    others = frames.loc[~is_vox, "identity"]
    held_out = held_out_identities(others.tolist(), test_fraction=test_fraction, seed=seed)
    split[~is_vox & frames["identity"].isin(held_out)] = TEST
    named = {i for i in frames["identity"].unique() if any(fnmatch.fnmatchcase(str(i), p) for p in hold_out)}
    split[frames["identity"].isin(named)] = TEST
    return split
