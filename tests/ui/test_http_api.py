"""`index serve` over HTTP: a real server process on a free localhost port, over the tiny index, driven with urllib.

One server for the module (started as a user starts it); the answers are checked against `index query --json`
and the index's own metadata.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from model.checkpoint import file_sha256
from model.reenact import output_size
from retrieval.search import Retriever
from tests.ui.conftest import png_bytes
from ui.http_api import local_hosts
from ui.index_command import main
from ui.serve_cli import api_network_warning
from ui.settings import MAX_UPLOAD_BYTES, AppConfig

START_TIMEOUT_S = 90  # the server's start, model load included, on a busy 2-core machine
REQUEST_TIMEOUT_S = 60
K = 5


@dataclass(frozen=True)
class Served:
    url: str
    port: int
    log: Path


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str]

    def json(self):
        return json.loads(self.body)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def multipart(fields: dict[str, object], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body as a browser or `curl -F` sends it, and its Content-Type; list values repeat."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        for one in value if isinstance(value, list) else [value]:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{one}\r\n'.encode())
    for name, (filename, data) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def call(
    url: str,
    *,
    fields: dict[str, object] | None = None,
    files: dict[str, tuple[str, bytes]] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """GET `url`, or POST a form when `fields` or `files` are given; HTTP errors are answers too."""
    data, extra = None, dict(headers or {})
    if fields is not None or files is not None:
        data, extra["Content-Type"] = multipart(fields or {}, files or {})
    request = urllib.request.Request(url, data=data, headers=extra, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return Answer(response.status, response.headers.get_content_type(), response.read(), dict(response.headers))
    except urllib.error.HTTPError as err:
        return Answer(err.code, err.headers.get_content_type(), err.read(), dict(err.headers))


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`index serve` exited with {process.returncode}:\n{log.read_text()}")
        try:
            if call(f"{url}/healthz").status == 200:
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"`index serve` did not answer within {START_TIMEOUT_S} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(ui_index: AppConfig, tmp_path_factory) -> Iterator[Served]:
    """`index serve` over the tiny index on a free port, with no --host: as a user starts it."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    command = [
        sys.executable,
        "-m",
        "ui.index_command",
        "serve",
        "--index",
        str(ui_index.index_dir),
        "--checkpoint",
        str(ui_index.checkpoint),
        "--port",
        str(port),
        "--device",
        "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one core per pytest worker, as the tests' own torch
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log)
        yield Served(url, port, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def frames(ui_index: AppConfig) -> pd.DataFrame:
    """Every indexed frame's metadata, as the library reads it (id, path, identity, video, ...)."""
    with Retriever(ui_index.index_dir, ui_index.checkpoint, device="cpu") as retriever:
        return retriever.frames(retriever.frame_ids())


def index_query(ui_index: AppConfig, *args: str) -> list[dict]:
    """What `index query ARGS --json` prints for the tiny index."""
    result = CliRunner().invoke(
        main,
        [
            "query",
            *args,
            "--json",
            "--index",
            str(ui_index.index_dir),
            "--checkpoint",
            str(ui_index.checkpoint),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_health_info_and_the_openapi_page(server: Served, ui_index: AppConfig, frames: pd.DataFrame) -> None:
    assert call(f"{server.url}/healthz").json() == {"status": "ok"}
    info = call(f"{server.url}/info").json()
    assert info["num_frames"] == info["num_vectors"] == len(frames) == 24
    assert (info["num_identities"], info["num_videos"], info["index_type"]) == (3, 6, "flat")
    assert info["checkpoint_sha256"] == file_sha256(ui_index.checkpoint)
    docs = call(f"{server.url}/docs")
    assert docs.status == 200 and docs.content_type == "text/html"
    spec = call(f"{server.url}/openapi.json").json()
    assert {"/healthz", "/info", "/query", "/frames/{frame_id}", "/reenact"} <= set(spec["paths"])
    assert {"Hit", "Info", "Problem"} <= set(spec["components"]["schemas"])


def test_it_binds_to_localhost_by_default_and_answers_only_loopback_names(server: Served) -> None:
    assert f"Uvicorn running on http://127.0.0.1:{server.port}" in server.log.read_text()
    listening = [
        line.split()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if line.split()[3] == "0A" and int(line.split()[1].split(":")[1], 16) == server.port
    ]
    assert [fields[1].split(":")[0] for fields in listening] == ["0100007F"]  # 127.0.0.1, little-endian hex
    assert call(f"{server.url}/healthz", headers={"Host": f"localhost:{server.port}"}).status == 200
    assert call(f"{server.url}/healthz", headers={"Host": "attacker.example"}).status == 400  # DNS rebinding


def test_a_photo_query_answers_what_index_query_json_prints(
    server: Served, ui_index: AppConfig, photo: bytes, photo_file: Path
) -> None:
    hits = call(f"{server.url}/query", fields={"k": K}, files={"image": ("astronaut.png", photo)})
    assert hits.status == 200 and hits.content_type == "application/json"
    assert hits.json() == index_query(ui_index, str(photo_file), "-k", str(K))
    assert [hit["rank"] for hit in hits.json()] == list(range(1, K + 1))
    rules = {"per_video": 1, "exclude": ["sv0001"]}
    hits = call(f"{server.url}/query", fields={"k": K, **rules}, files={"image": ("astronaut.png", photo)}).json()
    assert hits == index_query(ui_index, str(photo_file), "-k", str(K), "--per-video", "1", "--exclude", "sv0001")


def test_a_frame_query_searches_by_its_stored_pose_code(
    server: Served, ui_index: AppConfig, frames: pd.DataFrame
) -> None:
    row = frames.iloc[5]
    hits = call(f"{server.url}/query", fields={"frame_id": int(row["id"]), "k": K}).json()
    assert hits[0]["path"] == row["path"] and hits[0]["score"] == pytest.approx(1, abs=1e-5)  # itself, first
    others = call(f"{server.url}/query", fields={"frame_id": int(row["id"]), "k": K, "other_identities": "true"}).json()
    assert len(others) == K and row["identity"] not in {hit["identity"] for hit in others}
    file = ui_index.index_dir.parent / "synthvox" / row["path"]  # the CLI encodes the frame's file instead
    cli = index_query(ui_index, str(file), "-k", str(K), "--other-identities")
    assert [hit["path"] for hit in others] == [hit["path"] for hit in cli]
    assert [hit["score"] for hit in others] == pytest.approx([hit["score"] for hit in cli], abs=1e-5)


def test_hit_rules_shape_the_answer(server: Served, frames: pd.DataFrame) -> None:
    ask = {"frame_id": int(frames["id"].iloc[0]), "k": K}
    one_each = call(f"{server.url}/query", fields={**ask, "per_video": 1}).json()
    videos = [(hit["identity"], hit["video"]) for hit in one_each]
    assert len(videos) == K and len(set(videos)) == K  # 6 videos in the index: 5 different ones
    only = call(f"{server.url}/query", fields={**ask, "only": ["sv0001", "sv0002"]}).json()
    assert only and {hit["identity"] for hit in only} <= {"sv0001", "sv0002"}
    kept = call(f"{server.url}/query", fields={**ask, "exclude": ["sv0000", "sv0001"], "k": 20}).json()
    assert len(kept) == 8 and {hit["identity"] for hit in kept} == {"sv0002"}
    assert call(f"{server.url}/query", fields={**ask, "k": 0}).status == 422  # bounded: 1..100
    assert call(f"{server.url}/query", fields={**ask, "k": 101}).status == 422


def test_bad_uploads_are_one_line_naming_the_file(server: Served, photo: bytes) -> None:
    def refused(status: int, files: dict[str, tuple[str, bytes]], fields: dict | None = None) -> str:
        answer = call(f"{server.url}/query", fields=fields or {}, files=files)
        assert answer.status == status and answer.content_type == "application/json", answer
        detail = answer.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
        return detail

    assert refused(400, {"image": ("notes.txt", b"just text")}).startswith("notes.txt: not an image")
    assert refused(400, {"image": ("../../etc/cut.png", photo[:5000])}).startswith("cut.png: ")  # a label only
    blank = png_bytes(np.full((64, 64, 3), 128, np.uint8))
    assert refused(400, {"image": ("wall.png", blank)}) == "wall.png: no face found"
    big = refused(413, {"image": ("huge.png", b"\0" * (MAX_UPLOAD_BYTES + 1))})
    assert big.startswith("huge.png: ") and "16 MB upload limit" in big
    assert "not both" in refused(400, {"image": ("astronaut.png", photo)}, {"frame_id": 1})
    assert "not both" in refused(400, {})
    assert "identity" in refused(400, {"image": ("astronaut.png", photo)}, {"other_identities": "true"})
    assert call(f"{server.url}/query", fields={"frame_id": 999}).json() == {
        "detail": "frame 999: no such frame in the index"
    }


def test_frames_are_pngs_of_their_stored_size(server: Served, frames: pd.DataFrame) -> None:
    row = frames.iloc[3]
    answer = call(f"{server.url}/frames/{int(row['id'])}")
    assert answer.status == 200 and answer.content_type == "image/png"
    with Image.open(io.BytesIO(answer.body)) as img:
        assert (img.format, img.size, img.mode) == ("PNG", (int(row["width"]), int(row["height"])), "RGB")
    missing = call(f"{server.url}/frames/999")
    assert missing.status == 404 and missing.json() == {"detail": "frame 999: no such frame in the index"}
    assert call(f"{server.url}/frames/-1").status == 422


def test_reenact_draws_the_source_in_the_drivers_pose(server: Served, photo: bytes, ui_index: AppConfig) -> None:
    with Retriever(ui_index.index_dir, ui_index.checkpoint, device="cpu") as retriever:
        size = output_size(retriever.model, None)  # drawn from the source photo larger than the model's own size
    for ask in (
        {"fields": {"frame_id": 2}, "files": {"source": ("astronaut.png", photo)}},
        {"files": {"source": ("astronaut.png", photo), "driving": ("astronaut.png", photo)}},
    ):
        answer = call(f"{server.url}/reenact", **ask)
        assert answer.status == 200 and answer.content_type == "image/png", answer
        assert answer.headers["x-renderer"] in ("generator", "decoder")
        with Image.open(io.BytesIO(answer.body)) as img:
            assert (img.format, img.size) == ("PNG", (size, size))
    bad = call(f"{server.url}/reenact", fields={"frame_id": 2}, files={"source": ("notes.txt", b"text")})
    assert bad.status == 400 and bad.json()["detail"].startswith("notes.txt: not an image")
    unknown = call(f"{server.url}/reenact", fields={"frame_id": 999}, files={"source": ("astronaut.png", photo)})
    assert unknown.status == 404


def test_concurrent_queries_share_the_one_model(server: Served, photo: bytes) -> None:
    ask = {"fields": {"k": K}, "files": {"image": ("astronaut.png", photo)}}
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: call(f"{server.url}/query", **ask), range(6)))
    assert {answer.status for answer in answers} == {200}
    assert all(answer.json() == answers[0].json() for answer in answers)


def test_a_bad_index_is_one_line_before_any_server_starts(ui_index: AppConfig, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = CliRunner().invoke(
        main, ["serve", "--index", str(missing), "--checkpoint", str(ui_index.checkpoint), "--device", "cpu"]
    )
    assert result.exit_code == 2 and result.stderr.strip().splitlines() == [f"Error: {missing}: no such index folder"]


def test_only_loopback_is_quiet() -> None:
    for host in ("127.0.0.1", "localhost", "::1"):
        assert api_network_warning(host, 8000) is None
    warning = api_network_warning("0.0.0.0", 8000)
    assert warning is not None and "reachable from the network WITHOUT authentication" in warning
    assert local_hosts("0.0.0.0") is None  # on the network on purpose: any Host
    assert local_hosts("::1") == ["127.0.0.1", "[::1]", "localhost"]


def test_without_the_serve_extra_serve_says_what_to_install(
    ui_index: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # what find_spec sees when FastAPI is not installed
    result = CliRunner().invoke(
        main, ["serve", "--index", str(ui_index.index_dir), "--checkpoint", str(ui_index.checkpoint)]
    )
    assert result.exit_code == 1 and result.stderr.strip().splitlines() == [
        "Error: the API needs FastAPI and uvicorn, which are not installed: pip install 'posedex[serve]'"
    ]
