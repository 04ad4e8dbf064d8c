"""The browser UI under load (issue 14, concurrency): N headless Chromium sessions at once, each uploading a photo
on the Query page and switching to Reenact and back, over and over for a bounded time, against one `index ui`
server. Prints per-step latency (p50 / p95), the steps done and failed, the server's peak memory (VmHWM of its
process tree), and the machine, beside one session alone as the baseline.

Usage: .venv/bin/python benchmarks/ui_load.py [--index demo/index] [--sessions 8] [--seconds 60]
`make run` builds the demo index. A step is one page action until its pictures have loaded: the query's k hits
(upload), or the reenactments of the query and its hits (Reenact). Any exception shown on a page, or a step that
does not finish within its timeout, counts as failed.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from machine import cpu_model
from PIL import Image
from skimage import data

from model.resources import default_checkpoint

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package, installed by `make install`
START_TIMEOUT_S = 120
STEP_TIMEOUT_MS = 120_000
K = 10  # the Query page's default k


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_memory_mib(pid: int) -> float:
    """The high-water mark of resident memory (VmHWM) of a process and its children, in MiB."""
    total_kib = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if proc.name == str(pid) or fields.get("PPid", "").strip() == str(pid):
            total_kib += int(fields.get("VmHWM", "0 kB").split()[0])
    return total_kib / 1024


def start_server(index: Path, checkpoint: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "ui.index_command",
        "ui",
        "--index",
        str(index),
        "--checkpoint",
        str(checkpoint),
        "--port",
        str(port),
        "--device",
        "cpu",
    ]
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"`index ui` exited with {process.returncode}: see {log}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"`index ui` did not answer within {START_TIMEOUT_S} s: see {log}")


def wait_for_images(page, container: str, count: int) -> None:
    page.wait_for_function(
        """([selector, count]) => Array.from(document.querySelectorAll(selector))
               .filter(img => img.complete && img.naturalWidth > 0).length >= count""",
        arg=[f".st-key-{container} [data-testid='stImage'] img", count],
        timeout=STEP_TIMEOUT_MS,
    )


def session(url: str, photo: Path, stop_at: float, latencies: list[float], failures: list[str]) -> None:
    """One browser session: upload, Reenact, back to Query, until `stop_at`; each step's seconds appended."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.set_default_timeout(STEP_TIMEOUT_MS)
            page.goto(url)
            page.get_by_role("heading", name="Query: other faces in this pose").wait_for()
            while time.monotonic() < stop_at:
                for name, action in (
                    (
                        "upload",
                        lambda: (
                            page.locator("input[type=file]").set_input_files(photo),
                            wait_for_images(page, "query_results", K + 1),
                        ),
                    ),
                    (
                        "reenact",
                        lambda: (
                            page.get_by_text("Reenact", exact=True).click(),
                            wait_for_images(page, "reenact_results", K + 1),
                        ),
                    ),
                    (
                        "query",
                        lambda: (
                            page.get_by_text("Query", exact=True).click(),
                            page.get_by_role("heading", name="Query: other faces in this pose").wait_for(),
                        ),
                    ),
                ):
                    start = time.monotonic()
                    try:
                        action()
                        if page.locator("[data-testid='stException']").count():
                            failures.append(f"{name}: exception on the page")
                        else:
                            latencies.append(time.monotonic() - start)
                    except Exception as err:  # noqa: BLE001 - a failed step is a figure, not a crash
                        failures.append(f"{name}: {type(err).__name__}")
                        page.goto(url)
        finally:
            browser.close()


def run(url: str, photo: Path, sessions: int, seconds: float) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    failures: list[str] = []
    stop_at = time.monotonic() + seconds
    threads = [
        threading.Thread(target=session, args=(url, photo, stop_at, latencies, failures)) for _ in range(sessions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures


def report(label: str, latencies: list[float], failures: list[str]) -> None:
    if latencies:
        p50, p95 = np.percentile(latencies, [50, 95])
        print(
            f"{label}: {len(latencies)} steps, {len(failures)} failed; step latency p50 {p50:.2f} s, "
            f"p95 {p95:.2f} s, max {max(latencies):.2f} s"
        )
    else:
        print(f"{label}: no step finished; {len(failures)} failed")
    for failure in sorted(set(failures)):
        print(f"  failed: {failure} x{failures.count(failure)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path("demo/index"))
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    checkpoint = args.checkpoint or default_checkpoint()
    work = Path(os.environ.get("TMPDIR", "/tmp")) / "posedex_ui_load"
    work.mkdir(parents=True, exist_ok=True)
    photo = work / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, shared by {args.sessions} Chromium sessions and the server")
    process, url = start_server(args.index, checkpoint, work / "server.log")
    try:
        report("1 session (baseline)", *run(url, photo, 1, args.seconds / 2))
        report(f"{args.sessions} sessions at once", *run(url, photo, args.sessions, args.seconds))
        print(
            f"server peak memory (VmHWM, process and children): {peak_memory_mib(process.pid):.0f} MiB; "
            f"the model and index are loaded once per process"
        )
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
