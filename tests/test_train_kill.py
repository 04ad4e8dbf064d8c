"""SIGKILL during `daegan train`'s checkpoint writes: `--resume` continues from the last complete checkpoint.

The child is the real `daegan train` with one hook: it kills itself with SIGKILL at a chosen point of its second
checkpoint write (`checkpoint_every=1`), so the kill lands exactly there every run.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from model.checkpoint import load_checkpoint
from model.cli import main
from model.data.synthvox import synthesize

REPO = Path(__file__).resolve().parents[1]
STEPS = 4
KILLED_TRAIN = """
import os, signal, sys
from model import train_run
save = train_run.save_train_state
calls = []
def killing_save(*args, **kwargs):  # SIGKILL at the named point of the second checkpoint write
    calls.append(1)
    if len(calls) == 2 and sys.argv[1] == "before_state":
        os.kill(os.getpid(), signal.SIGKILL)
    save(*args, **kwargs)
    if len(calls) == 2 and sys.argv[1] == "after_state":
        os.kill(os.getpid(), signal.SIGKILL)
train_run.save_train_state = killing_save
from model.cli import main
main(sys.argv[2:])
"""


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data") / "synthvox"
    synthesize(root, identities=4, videos_per_identity=2, frames=8, size=32, seed=0, workers=1, progress=False)
    return root


@pytest.mark.parametrize("point", ["after_state", "before_state"])
def test_resume_after_a_kill_in_a_checkpoint_write_finishes_the_run(frames, tmp_path, point):
    out = tmp_path / "run"
    args = [
        "train",
        "--config",
        "tiny",
        "--data",
        str(frames),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--set",
        "train.checkpoint_every=1",
        "--set",
        f"train.max_steps={STEPS}",
    ]
    child = subprocess.run(
        [sys.executable, "-c", KILLED_TRAIN, point, *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert child.returncode == -9, child.stderr
    result = CliRunner().invoke(main, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    assert "resuming at step" in result.output
    metadata = load_checkpoint(out / "checkpoint.safetensors", "cpu").metadata
    assert metadata["step"] == str(STEPS)
    # the command lines, as daegan train parsed them, in the checkpoint (the report's "Trained with")
    assert (
        metadata["trained_with"]
        == f"{shlex.join(['daegan', *args])}; resumed: {shlex.join(['daegan', *args, '--resume'])}"
    )
    assert not (out / "checkpoint.pending.safetensors").exists()
