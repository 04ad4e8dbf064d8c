"""The split by identity: official on VoxCeleb1, seeded and stable elsewhere, never leaking an identity."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from model.data.collection import read_collection
from model.data.split import held_out_identities, split_by_identity


def test_voxceleb1_uses_the_official_test_identities(vox_crops_tree: Path) -> None:
    frames = read_collection(vox_crops_tree)
    split = split_by_identity(frames, test_fraction=0.5, seed=3)
    assert set(frames.loc[split == "test", "identity"]) == {"id10275"}


def test_seeded_fraction_is_deterministic_and_seed_dependent() -> None:
    names = [f"person{i}" for i in range(50)]
    a = held_out_identities(names, test_fraction=0.2, seed=0)
    assert len(a) == 10 and a == held_out_identities(list(reversed(names)), test_fraction=0.2, seed=0)
    assert a != held_out_identities(names, test_fraction=0.2, seed=1)


def test_adding_identities_keeps_earlier_order() -> None:
    base = held_out_identities([f"p{i}" for i in range(40)], test_fraction=0.25, seed=7)
    grown = held_out_identities([f"p{i}" for i in range(80)], test_fraction=0.125, seed=7)
    assert grown <= base | set(f"p{i}" for i in range(40, 80))


@settings(max_examples=60, deadline=None)
@given(
    names=st.sets(st.text(min_size=1, max_size=8), min_size=2, max_size=30),
    fraction=st.floats(0.01, 0.9),
    seed=st.integers(0, 1000),
)
def test_every_identity_lands_in_exactly_one_side(names: set[str], fraction: float, seed: int) -> None:
    rows = [(n, v) for n in sorted(names) for v in range(2)]
    frames = pd.DataFrame({"identity": [r[0] for r in rows], "video": [r[1] for r in rows], "layout": "frames"})
    split = split_by_identity(frames, test_fraction=fraction, seed=seed)
    sides = frames.assign(split=split).groupby("identity")["split"].nunique()
    assert (sides == 1).all()  # both videos of one identity fall on the same side
    held = frames.loc[split == "test", "identity"].nunique()
    assert 1 <= held <= len(names) - 1  # both sides non-empty whenever there are two identities


def test_hold_out_patterns_keep_whole_people_out_of_training(frames_tree: Path) -> None:
    frames = read_collection(frames_tree)  # identities p0, p1, p2
    split = split_by_identity(frames, test_fraction=0.0, seed=0, hold_out=("p[02]",))
    assert set(frames.loc[split == "test", "identity"]) == {"p0", "p2"}
    both = split_by_identity(frames, test_fraction=0.34, seed=0, hold_out=("p0",))  # the seeded draw, and p0 too
    seeded = split_by_identity(frames, test_fraction=0.34, seed=0)
    assert set(frames.loc[both == "test", "identity"]) == set(frames.loc[seeded == "test", "identity"]) | {"p0"}
