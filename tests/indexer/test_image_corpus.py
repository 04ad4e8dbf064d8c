"""`index build` over a frame folder holding the image corpus: every good file is indexed, every bad one is
skipped and listed with its reason, and the build still commits."""

from __future__ import annotations

from tests.image_corpus import BAD, GOOD
from tests.indexer.conftest import FRAMES
from ui.index_command import main


def test_a_build_indexes_every_good_file_and_lists_every_bad_one(runner, synthvox, tiny_checkpoint, tmp_path):
    """The corpus goes in as one more video, its files named as frames (`.png`: the collection reader goes by the
    suffix, Pillow by the content); the 1x1 picture is a frame like any other."""
    made = tmp_path / "corpus"
    made.mkdir()
    video = synthvox / "sv0000" / "phone"
    video.mkdir()
    reasons = {}
    for number, (name, make) in enumerate({**GOOD, **BAD}.items()):
        frame = video / f"{number:05d}.png"
        sample = make(made)
        sample.path.rename(frame)
        if name in BAD:
            reasons[frame] = sample.reason
    out = tmp_path / "idx"
    result = runner.invoke(
        main,
        [
            "build",
            str(synthvox),
            "--checkpoint",
            str(tiny_checkpoint),
            "--out",
            str(out),
            "--workers",
            "0",
            "--device",
            "cpu",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"indexed {FRAMES + len(GOOD)} frames to {out}" in result.output
    listed = [line.strip() for line in result.output.splitlines() if line.startswith("  ")]
    assert f"skipped: {len(BAD)}" in result.output and len(listed) == len(BAD)
    for frame, reason in reasons.items():
        assert any(line.startswith(f"{frame}: ") and reason in line for line in listed), (frame, reason, listed)
