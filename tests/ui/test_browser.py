"""End to end in a real browser: `index ui` serves a tiny index on a free localhost port and headless Chromium
(Debian's, driven by Playwright) uploads a photo, sees the k hits, reenacts, uploads a corrupt file, and finds
the segments that move like an uploaded clip.

Screenshots of each step are saved in the test's tmp folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.test_bad_faces import face
from tests.video_corpus import write_mp4
from ui.settings import AppConfig

pytestmark = pytest.mark.slow  # a real Streamlit server under headless Chromium, ~30 s: not in `make test-fast`

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package, installed by `make install`
START_TIMEOUT_S = 90  # the server's start, model load included, on a busy 2-core machine
STEP_TIMEOUT_MS = 60_000  # one page step (a rerun that searches or renders)
VIEWPORT = {"width": 1280, "height": 1600}
K = 10  # the Query page's default k
MOTION_TIMEOUT_MS = 180_000  # a clip's face followed, encoded and searched: the slowest step under a loaded CI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`index ui` exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"`index ui` did not answer within {START_TIMEOUT_S} s:\n{log.read_text()}")


@pytest.fixture
def served(ui_index: AppConfig, tmp_path: Path) -> Iterator[str]:
    """The URL of `index ui` serving the tiny index, started as a user starts it; stopped after the test."""
    assert CHROMIUM.is_file(), f"{CHROMIUM} missing: `make install` installs Debian's chromium"
    port = free_port()
    log = tmp_path / "server.log"
    command = [
        sys.executable,
        "-m",
        "ui.index_command",
        "ui",
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
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_images(page, container: str, count: int) -> None:
    """Until `count` pictures inside the keyed container have loaded (decoded, non-empty)."""
    page.wait_for_function(
        """([selector, count]) => Array.from(document.querySelectorAll(selector))
               .filter(img => img.complete && img.naturalWidth > 0).length === count""",
        arg=[f".st-key-{container} [data-testid='stImage'] img", count],
        timeout=STEP_TIMEOUT_MS,
    )


def test_upload_query_reenact_and_a_corrupt_upload(served: str, photo_file: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(photo_file.read_bytes()[:5000])
    clip = write_mp4(tmp_path / "nod.mp4", [np.roll(face(0, 128), i // 4, axis=0) for i in range(40)], fps=25)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(STEP_TIMEOUT_MS)
            page.goto(served)
            page.get_by_role("heading", name="Query: other faces in this pose").wait_for()

            page.locator("input[type=file]").set_input_files(photo_file)
            wait_for_images(page, "query_results", K + 1)  # the query face and its k hits
            assert page.get_by_text("#1 ", exact=False).count() >= 1
            page.screenshot(path=tmp_path / "1_query.png")

            page.get_by_text("Reenact", exact=True).click()
            page.get_by_role(
                "heading", name="Reenact: a source face in the pose of the query and its results"
            ).wait_for()
            wait_for_images(page, "reenact_results", K + 1)  # the source in the pose of each driver
            page.screenshot(path=tmp_path / "2_reenact.png")

            page.get_by_text("Query", exact=True).click()
            page.get_by_role("heading", name="Query: other faces in this pose").wait_for()
            page.locator("input[type=file]").set_input_files(corrupt)
            page.get_by_text("corrupt or truncated image").wait_for()
            assert page.get_by_text("Could not use").count() == 1
            assert page.locator("[data-testid='stException']").count() == 0
            page.screenshot(path=tmp_path / "3_corrupt.png")

            page.locator("input[type=file]").set_input_files(photo_file)  # the app keeps working
            wait_for_images(page, "query_results", K + 1)
            # Streamlit draws a rerun's new elements before it drops the last run's stale ones at the run's end, so
            # the error leaves after the hits appear (asserted at once, this failed a loaded CI)
            page.get_by_text("Could not use").wait_for(state="detached")

            page.get_by_text("Motion", exact=True).click()  # query by motion: a clip in, segments out
            page.get_by_role("heading", name="Motion: other faces that move like this clip").wait_for()
            page.get_by_text("Upload a clip: its face is followed").wait_for()
            # the Query page's uploader lingers, stale, until the rerun ends: upload into the Motion page's alone
            page.wait_for_function("document.querySelectorAll('input[type=file]').length === 1")
            page.locator("input[type=file]").set_input_files(clip)
            answered = page.get_by_role("heading", name="#1", exact=False).or_(page.get_by_text("Could not use"))
            answered.first.wait_for(timeout=MOTION_TIMEOUT_MS)  # the face followed, every video searched
            assert page.get_by_text("Could not use").count() == 0, page.get_by_text("Could not use").inner_text()
            assert page.locator("[data-testid='stException']").count() == 0
            page.screenshot(path=tmp_path / "4_motion.png")
        finally:
            browser.close()
    assert all(
        (tmp_path / name).stat().st_size > 0
        for name in ("1_query.png", "2_reenact.png", "3_corrupt.png", "4_motion.png")
    )
