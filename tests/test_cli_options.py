"""Bad options, run as a user runs them through `daegan` and `index`: a `--device` this machine lacks, `-k` below 1,
an `--index` (or `--out`) folder that holds no index, relative motion without a driving video. Each is one line on
stderr naming the option or folder and the reason, exit code 2, no traceback, and nothing written (issue 14,
"options")."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import torch
import uvicorn
from click.testing import CliRunner, Result

from model.cli import main as daegan_main
from model.cli_common import DEVICE
from model.config import load_config
from model.daegan import DAEGAN
from tests.conftest import write_frame
from ui import server
from ui.index_command import main as index_main

MISSING_GPU = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU torch sees: absent on every machine
NOT_AN_INDEX = "not a posedex index (no meta.sqlite, no manifest.json)"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    DAEGAN.from_config(load_config("tiny")).save(path)
    return path


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A folder of one photo: a root to index, a query image, and a folder that is not an index."""
    write_frame(tmp_path / "photos" / "face.png", 90, size=64)
    return tmp_path / "photos"


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """`index ui` and `index serve` must refuse before serving; were they to serve, the test fails instead of
    starting Streamlit or uvicorn."""
    monkeypatch.setattr(server, "serve", lambda *args, **kwargs: pytest.fail("index ui started a server"))
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: pytest.fail("index serve started a server"))


def device_commands(photos: Path, checkpoint: Path, out: Path) -> dict[str, tuple[click.Group, list[str]]]:
    """Every command that takes `--device`, with arguments that would otherwise run it (it writes into `out`)."""
    image = str(photos / "face.png")
    return {
        "daegan train": (daegan_main, ["train", "--config", "tiny", "--data", str(photos), "--out", str(out)]),
        "daegan reenact": (
            daegan_main,
            [
                "reenact",
                "--checkpoint",
                str(checkpoint),
                "--source",
                image,
                "--driving",
                image,
                "--out",
                str(out / "reenacted.png"),
            ],
        ),
        "daegan evaluate": (
            daegan_main,
            ["evaluate", "--checkpoint", str(checkpoint), "--data", str(photos), "--out", str(out)],
        ),
        "daegan ablate": (
            daegan_main,
            ["ablate", "--config", "tiny", "--data", str(photos), "--eval-data", str(photos), "--out", str(out)],
        ),
        "index build": (index_main, ["build", str(photos), "--checkpoint", str(checkpoint), "--out", str(out)]),
        "index add": (index_main, ["add", str(photos), "--checkpoint", str(checkpoint), "--index", str(out)]),
        "index query": (index_main, ["query", image, "--checkpoint", str(checkpoint), "--index", str(out)]),
        "index ui": (index_main, ["ui", "--checkpoint", str(checkpoint), "--index", str(out)]),
        "index serve": (index_main, ["serve", "--checkpoint", str(checkpoint), "--index", str(out)]),
    }


def one_line(result: Result) -> str:
    """The one line a refused command printed, after checking it refused the way a user should see."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_every_command_that_takes_device_is_covered_and_checks_it(
    photos: Path, checkpoint: Path, tmp_path: Path
) -> None:
    found = set()
    for group, prog in ((daegan_main, "daegan"), (index_main, "index")):
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            params = {param.name: param for param in group.get_command(ctx, name).params}
            if "device" in params:
                assert params["device"].type is DEVICE, f"{prog} {name}"
                found.add(f"{prog} {name}")
    assert found == set(device_commands(photos, checkpoint, tmp_path / "out"))


@pytest.mark.parametrize(
    "device, reason",
    [
        ("tpu", "device must be auto, cpu or cuda[:N], got 'tpu'"),
        ("cuda:x", "device must be auto, cpu or cuda[:N], got 'cuda:x'"),
        (MISSING_GPU, f"device {MISSING_GPU} was asked for, but torch sees no such CUDA GPU (use cpu or auto)"),
        pytest.param(
            "cuda",
            "device cuda was asked for, but torch sees no such CUDA GPU (use cpu or auto)",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU"),
        ),
    ],
)
def test_a_device_this_machine_lacks_is_one_line(
    runner: CliRunner, photos: Path, checkpoint: Path, tmp_path: Path, no_server: None, device: str, reason: str
) -> None:
    out = tmp_path / "out"
    for command, (group, args) in device_commands(photos, checkpoint, out).items():
        line = one_line(runner.invoke(group, [*args, "--device", device]))
        assert line == f"Error: Invalid value for '--device': {reason}", command
        assert not out.exists(), command  # refused while parsing, before any work


@pytest.mark.parametrize("k", ["0", "-3"])
def test_k_below_one_is_one_line(runner: CliRunner, photos: Path, checkpoint: Path, k: str) -> None:
    line = one_line(
        runner.invoke(
            index_main, ["query", str(photos / "face.png"), "-k", k, "--checkpoint", str(checkpoint), "--device", "cpu"]
        )
    )
    assert line == f"Error: Invalid value for '-k': {k} is not in the range x>=1."


def test_a_folder_that_is_not_an_index_is_one_line(
    runner: CliRunner, photos: Path, checkpoint: Path, no_server: None
) -> None:
    image, fast = str(photos / "face.png"), ["--device", "cpu", "--workers", "0", "--no-progress"]
    commands = [
        ["info", "--index", str(photos)],
        ["verify", "--index", str(photos)],  # no index at all is bad input; a damaged one is a problem found, exit 1
        ["query", image, "--index", str(photos), "--checkpoint", str(checkpoint), "--device", "cpu"],
        ["ui", "--index", str(photos), "--checkpoint", str(checkpoint), "--device", "cpu"],
        ["serve", "--index", str(photos), "--checkpoint", str(checkpoint), "--device", "cpu"],
        ["add", str(photos), "--index", str(photos), "--checkpoint", str(checkpoint), *fast],
        ["build", str(photos), "--out", str(photos), "--checkpoint", str(checkpoint), *fast],
    ]
    for args in commands:
        assert one_line(runner.invoke(index_main, args)) == f"Error: {photos}: {NOT_AN_INDEX}", args
        assert [path.name for path in photos.iterdir()] == ["face.png"], args  # nothing written into it
    for args in (
        ["info", "--index", image],
        ["build", str(photos), "--out", image, "--checkpoint", str(checkpoint), *fast],
    ):  # a file where a folder belongs
        assert one_line(runner.invoke(index_main, args)) == f"Error: {image}: not a folder", args


def test_relative_motion_with_a_photo_driver_is_one_line(runner: CliRunner, photos: Path, checkpoint: Path) -> None:
    image, out = str(photos / "face.png"), photos.parent / "out.png"
    args = ["reenact", "--checkpoint", str(checkpoint), "--source", image, "--driving", image, "--out", str(out)]
    line = one_line(runner.invoke(daegan_main, [*args, "--motion", "relative"]))
    assert line == "Error: Invalid value for --motion: relative motion follows a driving video; a photo has none"
    assert not out.exists()
