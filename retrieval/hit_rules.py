"""Which hits a search may return: identity filters and diversity caps, applied in rank order.

A person asking "who else holds their head like this?" wants different people and different moments, not one
video's neighbouring frames ten times over (issue 16). `HitRules` says what a result may hold; `Retriever`
over-fetches until `k` hits pass them or the index is spent.

Choices:
- Rules are applied greedily in rank order: a hit is kept when every rule still allows it given the better hits
  already kept. That keeps the best hit of each video and identity, and the result stays ranked by score.
- `per_video` and `per_identity` cap how many hits one video (identity, video) or one person may give.
- `moment_s` collapses near duplicates: a hit within that many seconds of a better kept hit of the same video is
  the same moment seen again. A frame without a time (photos, frame folders without `time` labels) is its own
  moment: nothing says how near it is to another.
- `exclude` and `only` filter identities (exclude wins). The query's own identity (`other_identities`) is one more
  excluded identity, added per query by `Retriever`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class HitRules:
    """What a search's hits may hold (module docstring). `HitRules()` allows everything: the plain top k."""

    per_video: int | None = None  # at most this many hits from one video
    per_identity: int | None = None  # at most this many hits of one identity
    moment_s: float | None = None  # hits of one video closer than this (seconds) to a better one are dropped
    exclude: frozenset[str] = field(default_factory=frozenset)  # identities never returned
    only: frozenset[str] | None = None  # when given, the only identities returned

    def __post_init__(self) -> None:
        for name in ("per_video", "per_identity"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.moment_s is not None and self.moment_s < 0:
            raise ValueError(f"moment_s must be >= 0, got {self.moment_s}")
        object.__setattr__(self, "exclude", frozenset(self.exclude))
        if self.only is not None:
            object.__setattr__(self, "only", frozenset(self.only))

    @property
    def caps(self) -> bool:
        """Whether a cap per video, identity or moment applies (these need the hits' metadata to check)."""
        return self.per_video is not None or self.per_identity is not None or self.moment_s is not None

    @property
    def allows_all(self) -> bool:
        """Whether every hit passes: the search needs no over-fetching."""
        return self == HitRules()

    def allows(self, identity: str) -> bool:
        """Whether the identity filters (`exclude`, `only`) let hits of `identity` through."""
        return identity not in self.exclude and (self.only is None or identity in self.only)

    def excluding(self, identities: Iterable[str]) -> HitRules:
        """These rules with `identities` excluded as well."""
        return replace(self, exclude=self.exclude | frozenset(identities))

    def keep(self, hits: pd.DataFrame, k: int) -> np.ndarray:
        """Indices (positions) of the at most `k` rows of `hits` (identity, video, time_s; best first) to return."""
        identities = hits["identity"].to_numpy()
        videos = hits["video"].to_numpy()
        times = hits["time_s"].to_numpy(dtype=float) if "time_s" in hits else np.full(len(hits), np.nan)
        per_video: Counter[tuple[str, str]] = Counter()
        per_identity: Counter[str] = Counter()
        moments: defaultdict[tuple[str, str], list[float]] = defaultdict(list)  # kept times of each video
        kept: list[int] = []
        for row, (identity, video, time) in enumerate(zip(identities, videos, times)):
            if len(kept) == k:
                break
            key = (identity, video)
            if not self.allows(identity):
                continue
            if self.per_video is not None and per_video[key] >= self.per_video:
                continue
            if self.per_identity is not None and per_identity[identity] >= self.per_identity:
                continue
            if (
                self.moment_s is not None
                and not np.isnan(time)
                and any(abs(time - seen) < self.moment_s for seen in moments[key])
            ):
                continue
            kept.append(row)
            per_video[key] += 1
            per_identity[identity] += 1
            if not np.isnan(time):
                moments[key].append(time)
        return np.asarray(kept, dtype=np.int64)
