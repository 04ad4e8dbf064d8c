"""Re-take the README's screenshot of the browser UI (docs/ui_query.png): `index ui` on the demo index, headless
Chromium (Debian's, driven by Playwright) uploads scikit-image's astronaut, waits for the query face and its hits,
and photographs the page as a user sees it (near duplicates collapsed, the default).

    .venv/bin/python scripts/ui_screenshot.py [--index demo/index] [--out docs/ui_query.png] [--pose]

`--pose` switches on the head-pose overlay first (dlib's landmarks and facing arrows).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from skimage import data

from model.data.images import write_image

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1400, "height": 1500}
STEP_TIMEOUT_MS = 120_000
K = 10  # the Query page's default


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"`index ui` exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"`index ui` did not answer within {timeout_s:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path("demo/index"))
    parser.add_argument("--out", type=Path, default=Path("docs/ui_query.png"))
    parser.add_argument("--pose", action="store_true", help="switch on the head-pose overlay before the shot")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "astronaut.png"
        write_image(photo, data.astronaut())
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ui.index_command",
                "ui",
                "--index",
                str(args.index),
                "--port",
                str(port),
                "--device",
                "cpu",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ},
        )
        try:
            wait_until_healthy(url, server)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
                page = browser.new_page(viewport=VIEWPORT)
                page.set_default_timeout(STEP_TIMEOUT_MS)
                page.goto(url)
                page.get_by_role("heading", name="Query: other faces in this pose").wait_for()
                page.locator("input[type=file]").set_input_files(photo)
                loaded = """([selector, count]) => Array.from(document.querySelectorAll(selector))
                                .filter(img => img.complete && img.naturalWidth > 0).length === count"""
                selector = ".st-key-query_results [data-testid='stImage'] img"
                page.wait_for_function(loaded, arg=[selector, K + 1])
                if args.pose:
                    page.get_by_text("Show head pose (dlib)").click()
                    page.get_by_text("yaw", exact=False).first.wait_for()
                    page.wait_for_function(loaded, arg=[selector, K + 1])
                page.wait_for_timeout(1000)  # let the last pictures paint
                page.screenshot(path=str(args.out), full_page=True)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
