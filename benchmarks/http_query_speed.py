"""Latency of a photo query over `index serve`'s HTTP API against `index query --json` run as a command (issue 16).

Ours: `index serve` started as a user starts it (a subprocess on a free localhost port, the model and the index
loaded once), then `POST /query` with the photo uploaded as multipart form data, k hits back as JSON: one new
connection per query (as curl makes), the upload, decoding, face crop, encoding, search and the JSON.
Baseline: `index query photo.png -k K --json` as a subprocess, per query: the price a script pays that calls the
CLI once per photo (interpreter and torch start-up, the model and the index loaded each time). Beside them, the
same query in process (`Retriever.search` on the decoded photo: crop, encode, search), the floor under both, and
what the browser UI's Query page computes for the same upload (`ui.query.run_query` on the decoded upload, its hit
frames read and the grid drawn: `benchmarks/ui_query_speed.py` times its stages and a whole AppTest rerun), so
the three ways in (CLI, HTTP, UI) are measured in one run.

Index: the demo index that `make run` builds (`demo/index`, the shipped checkpoint) unless `--index` names
another. The photo: scikit-image's astronaut, 512 x 512 PNG. Figures are p50 and p99 over `--repeats` HTTP
queries after `--warmup`, and over `--cli-repeats` command runs spread among them, so a load that comes and goes
on the machine weighs on both.

    .venv/bin/python benchmarks/http_query_speed.py [--index demo/index --k 10 --repeats 100 --cli-repeats 10]
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from machine import torch_machine
from PIL import Image
from skimage import data

from model.device import pick_device
from model.resources import default_checkpoint
from retrieval.search import Retriever
from ui.query import run_query
from ui.uploads import decode_upload

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120


def photo_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, format="PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def query_request(url: str, photo: bytes, k: int) -> urllib.request.Request:
    """`POST /query` with `image` and `k` as multipart form data, as `curl -F` sends them."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="k"\r\n\r\n{k}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="astronaut.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + photo
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return urllib.request.Request(
        f"{url}/query", data=body, method="POST", headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )


def wait_until_healthy(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"index serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    sys.exit(f"index serve did not answer within {START_TIMEOUT_S} s")


def report(label: str, seconds: list[float], baseline: list[float] | None = None) -> None:
    p50, p99 = np.percentile(seconds, 50) * 1e3, np.percentile(seconds, 99) * 1e3
    line = f"{label:<52} p50 {p50:8.1f} ms   p99 {p99:8.1f} ms   (n {len(seconds)})"
    if baseline is not None:
        line += f"   CLI / this: {np.percentile(baseline, 50) / np.percentile(seconds, 50):.1f}x at p50"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=REPO / "demo" / "index")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--cli-repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    checkpoint = args.checkpoint or default_checkpoint()
    device = pick_device(args.device)
    photo = photo_bytes()

    with tempfile.TemporaryDirectory() as tmp:
        photo_file = Path(tmp) / "astronaut.png"
        photo_file.write_bytes(photo)
        common = ["--index", str(args.index), "--checkpoint", str(checkpoint), "--device", args.device]
        cli = [sys.executable, "-m", "ui.index_command", "query", str(photo_file), "-k", str(args.k), "--json", *common]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "ui.index_command", "serve", "--port", str(port), *common],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_healthy(url, server)
            with Retriever(args.index, checkpoint, device=device) as retriever:
                image = np.asarray(data.astronaut())
                for _ in range(args.warmup):
                    urllib.request.urlopen(query_request(url, photo, args.k)).read()
                    retriever.search(image, args.k)
                http, library, command, page = [], [], [], []
                cli_every = max(1, args.repeats // args.cli_repeats)
                for r in range(args.repeats):
                    start = time.perf_counter()
                    with urllib.request.urlopen(query_request(url, photo, args.k)) as response:
                        response.read()
                    http.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    retriever.search(image, args.k)
                    library.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    run_query(
                        retriever, decode_upload(photo, "astronaut.png"), args.k, crop=True, source="astronaut.png"
                    ).grid_png()
                    page.append(time.perf_counter() - start)
                    if r % cli_every == 0 and len(command) < args.cli_repeats:
                        start = time.perf_counter()
                        subprocess.run(cli, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                        command.append(time.perf_counter() - start)
        finally:
            server.terminate()
            server.wait(timeout=30)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(torch_machine(device))
    print(
        f"index {args.index}, k {args.k}, photo 512 x 512 PNG; load average {load}; "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}"
    )
    report("index query --json, one command per photo", command)
    report("POST /query to index serve (HTTP, new connection)", http, command)
    report("UI Query page's work for an upload (decode..grid PNG)", page, command)
    report("Retriever.search in process (no HTTP, no start-up)", library, command)


if __name__ == "__main__":
    main()
