"""`index ui`: checks the index and checkpoint before serving, binds to localhost unless told, hands over to
Streamlit with the config the app reads."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ui import server
from ui.index_command import main
from ui.settings import AppConfig


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[AppConfig, str, int]]:
    """What `serve` was asked to serve (instead of replacing the test process with Streamlit)."""
    calls = []
    monkeypatch.setattr(server, "serve", lambda config, *, address, port: calls.append((config, address, port)))
    return calls


def test_ui_serves_the_index_on_localhost_by_default(runner: CliRunner, ui_index: AppConfig, served) -> None:
    result = runner.invoke(
        main,
        [
            "ui",
            "--index",
            str(ui_index.index_dir),
            "--checkpoint",
            str(ui_index.checkpoint),
            "--port",
            "8611",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert served == [(AppConfig(ui_index.index_dir, ui_index.checkpoint, "cpu"), "127.0.0.1", 8611)]
    assert "http://127.0.0.1:8611" in result.output


def test_a_bad_index_or_checkpoint_is_one_line_before_any_server_starts(
    runner: CliRunner, ui_index: AppConfig, tmp_path: Path, served
) -> None:
    missing = tmp_path / "nowhere"
    result = runner.invoke(main, ["ui", "--index", str(missing), "--checkpoint", str(ui_index.checkpoint)])
    assert result.exit_code == 2 and result.stderr.strip().splitlines() == [f"Error: {missing}: no such index folder"]
    other = tmp_path / "other.safetensors"
    other.write_bytes(b"not the index's checkpoint")  # the file is read before its hash is compared with the index's
    result = runner.invoke(main, ["ui", "--index", str(ui_index.index_dir), "--checkpoint", str(other)])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1
    assert lines[0].startswith(f"Error: {other}: not a safetensors checkpoint")
    result = runner.invoke(
        main, ["ui", "--index", str(ui_index.index_dir), "--checkpoint", str(ui_index.checkpoint), "--port", "0"]
    )
    assert result.exit_code == 2 and "--port" in result.stderr
    assert served == []


def test_without_the_ui_extra_the_ui_says_what_to_install(
    runner: CliRunner, ui_index: AppConfig, served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "streamlit", None)  # what find_spec sees when Streamlit is not installed
    result = runner.invoke(main, ["ui", "--index", str(ui_index.index_dir), "--checkpoint", str(ui_index.checkpoint)])
    assert result.exit_code == 1 and result.stderr.strip().splitlines() == [
        "Error: the UI needs Streamlit, which is not installed: pip install 'posedex[ui]'"
    ]
    assert served == []
