"""What `daegan evaluate` measures and how much of it: one frozen dataclass, the only home of the evaluation's numbers.

The defaults are the paper's protocol where it has one (sec. 4, "Performance metrics", after Zakharov et al. 2019:
50 test videos x 32 hold-out driving frames, sources from the rest of each video) and say why where it is silent.
`evaluation_settings` applies ``key=value`` overrides from the command line (`daegan evaluate --set k=5`), so an
ablation runner or a test builds the same object with smaller numbers; the resolved settings go into metrics.json.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EvaluationSettings:
    """How many videos, frames, queries and pictures an evaluation uses, and its seeds."""

    # paper protocol (sec. 4) and cross-identity reenactment
    num_videos: int = 50  # test videos drawn at random; paper: 50 (fewer when the collection has fewer)
    num_driving: int = 32  # hold-out driving frames per video; paper: 32 (fewer when a video is shorter)
    # cross-identity reenactment: each source video is driven by ceil(this / source videos) videos of other
    # identities, its num_driving frames split among them, so that a collection's figures rest on at least this many
    # driver videos; paper silent (one each). 40 leaves SynthVox's 50 sources at one driver each and gives ORL
    # s31-s40's 10 sources four each (`cross_identity`)
    min_driver_videos: int = 40
    # cross-identity reenactment draws the driving codes as they are ("absolute", the paper's) or their motion about
    # their video's mean on the source's own mean code ("relative": `model.daegan.relative_pose`)
    motion: str = "absolute"
    num_sources: int | None = None  # source frames for F, from the rest of the video; None: the checkpoint's K
    keep_background: bool = True  # reenactments pasted over the first source frame, as the product shows them
    # (model.composite); false: the renderer's whole frame
    # cross-identity reenactments of a real collection drawn at its frames' size from the source frames as on disk
    # (DAEGAN.draw), as `daegan reenact` draws a photo; false: at the model's size. The frames they are judged
    # beside stay at the model's size either way.
    real_at_frame_size: bool = True
    seed: int = 0  # every random draw of the evaluation (videos, frames, queries, probe splits)
    max_frames: int = 4000  # frames read per collection (whole videos drawn at random beyond it): ~1 GB at 256 px
    held_out_only: bool = True  # a collection the checkpoint partly trained on is evaluated on its held-out identities
    # pose retrieval across identities (paper sec. 4.3, Fig. 8)
    k: int = 5  # hits per query; paper silent (Fig. 8 shows a handful)
    max_queries: int = 500  # queries drawn from the frames; a few hundred give a standard error well under 5 %
    # linear probes (scikit-learn)
    probe_alphas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)  # ridge penalties tried by CV
    probe_folds: int = 5  # folds by identity that choose the ridge penalty (fewer when fewer identities are fitted)
    probe_test_fraction: float = 0.25  # identities held out of the pose probe: it must generalise to new people
    probe_c: float = 1.0  # inverse L2 penalty of the identity classifier (scikit-learn's default)
    probe_max_iter: int = 5000  # L-BFGS iterations of the identity classifier; standardised features converge early
    face_probe_size: int = 16  # images are area-pooled to this side before the pose probes (16x16x3 features)
    # pictures
    picture_queries: int = 5  # query rows of the retrieval grid (Fig. 8)
    picture_frames: int = 8  # frames of the one video of the disentangling picture (Fig. 7)
    picture_sources: int = 4  # source rows of the reenactment grid (Figs. 1 and 5)
    picture_drivers: int = 6  # driver columns of the reenactment grid
    picture_cell: int = 96  # side in pixels of one image in a picture (nearest-neighbour enlarged when smaller)
    # real frames: dlib landmarks
    landmark_size: int = 256  # images are enlarged to this side before dlib's detector: it misses faces under ~80 px

    def __post_init__(self) -> None:
        object.__setattr__(self, "probe_alphas", tuple(float(a) for a in self.probe_alphas))  # YAML gives a list
        counts = (
            "num_videos",
            "num_driving",
            "min_driver_videos",
            "max_frames",
            "k",
            "probe_folds",
            "max_queries",
            "probe_max_iter",
            "face_probe_size",
            "picture_queries",
            "picture_frames",
            "picture_sources",
            "picture_drivers",
            "picture_cell",
            "landmark_size",
        )
        for name in counts:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.num_sources is not None and (not isinstance(self.num_sources, int) or self.num_sources < 1):
            raise ValueError(f"num_sources must be a positive integer or null, got {self.num_sources!r}")
        if self.motion not in ("absolute", "relative"):
            raise ValueError(f"motion must be absolute or relative, got {self.motion!r}")
        for name in ("held_out_only", "keep_background", "real_at_frame_size"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not 0.0 < self.probe_test_fraction < 1.0:
            raise ValueError(f"probe_test_fraction must be in (0, 1), got {self.probe_test_fraction}")
        if not self.probe_alphas or min(self.probe_alphas) <= 0 or self.probe_c <= 0:
            raise ValueError("probe_alphas must be positive numbers and probe_c > 0")

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["probe_alphas"] = list(self.probe_alphas)
        return values


def evaluation_settings(overrides: dict[str, Any] | None = None) -> EvaluationSettings:
    """The default settings with `overrides` (field name -> value) applied; an unknown name is a ValueError."""
    overrides = dict(overrides or {})
    known = {f.name for f in dataclasses.fields(EvaluationSettings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown evaluation setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return EvaluationSettings(**overrides)
