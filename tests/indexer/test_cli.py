"""The `index` command line: build, add, info and verify outputs and exit codes; bad input is one line, exit 2."""

from __future__ import annotations

import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from indexer.store import Store
from tests.indexer.conftest import FRAMES
from ui.index_command import main

REPO = Path(__file__).resolve().parents[2]

FAST = ["--workers", "0", "--device", "cpu", "--no-progress"]


def _build(runner: CliRunner, root: Path, checkpoint: Path, out: Path):
    return runner.invoke(main, ["build", str(root), "--checkpoint", str(checkpoint), "--out", str(out), *FAST])


def test_build_info_verify(runner, synthvox, tiny_checkpoint, tmp_path):
    bad = synthvox / "sv0000" / "v01" / "00001.png"
    bad.write_bytes(b"")
    out = tmp_path / "idx"
    result = _build(runner, synthvox, tiny_checkpoint, out)
    assert result.exit_code == 0, result.output
    assert f"indexed {FRAMES - 1} frames to {out}" in result.output and "frames/s" in result.output
    assert "skipped: 1" in result.output and f"  {bad}: empty file (0 bytes)" in result.output
    result = runner.invoke(main, ["info", "--index", str(out)])
    assert result.exit_code == 0, result.output
    assert f"frames:     {FRAMES - 1}" in result.output and "identities: 3" in result.output
    assert "dim:        16 (cosine)" in result.output and "index type: flat" in result.output  # auto: flat
    assert "checkpoint: sha256 " in result.output and "MiB" in result.output
    result = runner.invoke(main, ["verify", "--index", str(out)])
    assert (result.exit_code, result.output) == (0, "ok\n")


def test_verify_exits_1_after_tampering(runner, synthvox, tiny_checkpoint, tmp_path):
    out = tmp_path / "idx"
    assert _build(runner, synthvox, tiny_checkpoint, out).exit_code == 0
    db = sqlite3.connect(out / "meta.sqlite")
    with db:
        db.execute("DELETE FROM frames WHERE id = 3")
    db.close()
    result = runner.invoke(main, ["verify", "--index", str(out)])
    assert result.exit_code == 1
    assert "counts differ" in result.output and "in rows only []" in result.output and "ok" not in result.output
    faiss_file = next(out.glob("index.*.faiss"))
    faiss_file.write_bytes(faiss_file.read_bytes()[:-8])
    result = runner.invoke(main, ["verify", "--index", str(out)])
    assert result.exit_code == 1 and "size" in result.output and "does not match the recorded" in result.output


def test_add_adds_new_videos_and_refuses_another_checkpoint(
    runner, synthvox, tiny_checkpoint, other_checkpoint, tmp_path
):
    held = tmp_path / "held"
    shutil.move(synthvox / "sv0001" / "v00", held)
    out = tmp_path / "idx"
    assert _build(runner, synthvox, tiny_checkpoint, out).exit_code == 0
    shutil.move(held, synthvox / "sv0001" / "v00")
    result = runner.invoke(
        main, ["add", str(synthvox), "--index", str(out), "--checkpoint", str(tiny_checkpoint), *FAST]
    )
    assert result.exit_code == 0, result.output
    assert f"added 4 frames to {out}" in result.output and f"already indexed: {FRAMES - 4} frames" in result.output
    result = runner.invoke(
        main, ["add", str(synthvox), "--index", str(out), "--checkpoint", str(other_checkpoint), *FAST]
    )
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "differs from the checkpoint" in result.stderr and "Traceback" not in result.output
    assert f"frames:     {FRAMES}" in runner.invoke(main, ["info", "--index", str(out)]).output


def test_bad_input_is_one_line_and_exit_2(runner, synthvox, tiny_checkpoint, tmp_path):
    cases = [
        (
            ["build", str(tmp_path / "nowhere"), "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "a")],
            "no such folder",
        ),
        (
            ["build", str(synthvox), "--checkpoint", str(synthvox / "labels.csv"), "--out", str(tmp_path / "b")],
            "labels.csv",
        ),
        (
            ["add", str(synthvox), "--index", str(tmp_path / "none"), "--checkpoint", str(tiny_checkpoint)],
            "no such index folder",
        ),
        (["info", "--index", str(synthvox)], "not a posedex index"),
        (["verify", "--index", str(tmp_path / "none")], "no such index folder"),
    ]
    for args, message in cases:
        result = runner.invoke(main, [*args, *(FAST if args[0] in ("build", "add") else [])])
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, lines)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_options_are_bounded(runner, synthvox, tiny_checkpoint, tmp_path):
    base = ["build", str(synthvox), "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "idx")]
    for extra in (["--batch-size", "0"], ["--index-type", "ivfflat"], ["--workers", "-1"], ["--device", "tpu"]):
        result = runner.invoke(main, [*base, *extra])
        assert result.exit_code == 2 and "Invalid value" in result.output, extra
    assert not (tmp_path / "idx").exists()
    help_text = runner.invoke(main, ["build", "--help"]).output
    assert "Example: index build" in help_text and "[default: auto]" in help_text


KILLED_BUILD = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as in a terminal, even if launched with it ignored
from indexer import build
read = build.FrameReader.__getitem__
def slow_read(self, i):  # a slow disk: the kill lands while frames are still being read and encoded
    time.sleep(0.05)
    return read(self, i)
build.FrameReader.__getitem__ = slow_read
from ui.index_command import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["kill -9", "ctrl-c"])
def test_killing_index_add_mid_way_leaves_the_old_index_answering(runner, synthvox, tiny_checkpoint, tmp_path, signum):
    out = tmp_path / "idx"
    assert _build(runner, synthvox, tiny_checkpoint, out).exit_code == 0
    more = Path(shutil.copytree(synthvox, tmp_path / "more"))
    command = [
        sys.executable,
        "-c",
        KILLED_BUILD,
        "add",
        str(more),
        "--index",
        str(out),
        "--checkpoint",
        str(tiny_checkpoint),
        "--workers",
        "0",
        "--batch-size",
        "1",
        "--device",
        "cpu",
    ]
    with subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True) as child:
        progress = ""
        while not re.search(r"\b([3-9]|1\d)/24\b", progress):  # tqdm says a few of the 24 frames are done
            char = child.stderr.read(1)
            assert char, f"the add ended before it could be killed: {progress}"
            progress += char
        child.send_signal(signum)
        child.wait(timeout=60)
        child.stderr.read()  # drain what it printed after the signal
    assert child.returncode == (-9 if signum == signal.SIGKILL else 1)  # click turns Ctrl-C into "Aborted!", 1
    result = runner.invoke(main, ["verify", "--index", str(out)])
    assert (result.exit_code, result.output) == (0, "ok\n")
    assert f"frames:     {FRAMES}" in runner.invoke(main, ["info", "--index", str(out)]).output
    with Store.open(out) as store:  # the old index answers: a frame of it finds itself
        row = store.get([5]).iloc[0]
        file, frame = store.frame_file(row["path"])
        assert file.is_file() and len(store.search(np.ones((1, store.dim), np.float32), 3)[1][0]) == 3
