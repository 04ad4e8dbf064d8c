"""The UI's security bounds, checked on what really reaches Streamlit and the browser: `index ui` binds to
loopback unless `--host` says otherwise (then one warning line on stderr), XSRF protection and the upload cap are
on the Streamlit command line, and a frame whose file links outside the collection is a message naming the frame,
not a picture and not a crash."""

from __future__ import annotations

import os
import shutil

import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from indexer.build import build_index
from model.data.errors import DataError
from model.data.synthvox import synthesize
from retrieval.search import Retriever
from tests.retrieval.conftest import save_tiny_model
from tests.ui.conftest import APP_TIMEOUT
from ui.index_command import main
from ui.query_page import BROWSE
from ui.server import APP
from ui.settings import ENV_INDEX, MAX_UPLOAD_BYTES, MAX_UPLOAD_MB, AppConfig, is_loopback
from ui.uploads import decode_upload


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict[str, str]]]:
    """The command lines and environments `index ui` hands to `os.execve` (recorded instead of replacing the test
    process with Streamlit): exactly what the server would start with."""
    calls: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr(os, "execve", lambda file, argv, env: calls.append((list(argv), dict(env))))
    return calls


def flags(argv: list[str]) -> dict[str, str]:
    """The `--name value` settings of a `streamlit run APP ...` command line."""
    assert argv[1:5] == ["-m", "streamlit", "run", str(APP)]
    return dict(zip(argv[5::2], argv[6::2]))


def serve(runner: CliRunner, config: AppConfig, *extra: str):
    return runner.invoke(
        main,
        [
            "ui",
            "--index",
            str(config.index_dir),
            "--checkpoint",
            str(config.checkpoint),
            "--port",
            "8612",
            "--device",
            "cpu",
            *extra,
        ],
    )


def test_the_server_binds_to_loopback_by_default_with_xsrf_on_and_uploads_capped(
    runner: CliRunner, ui_index: AppConfig, launched
) -> None:
    result = serve(runner, ui_index)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # no warning on loopback
    ((argv, env),) = launched
    settings = flags(argv)
    assert settings["--server.address"] == "127.0.0.1" and settings["--server.port"] == "8612"
    assert settings["--server.enableXsrfProtection"] == "true"
    assert settings["--server.maxUploadSize"] == str(MAX_UPLOAD_MB)  # Streamlit's cap is the app's own cap
    assert MAX_UPLOAD_BYTES == MAX_UPLOAD_MB * 2**20
    assert env[ENV_INDEX] == str(ui_index.index_dir.resolve())


@pytest.mark.parametrize("option", ["--host", "--address"])
def test_another_host_is_bound_as_given_with_one_loud_warning(
    runner: CliRunner, ui_index: AppConfig, launched, option: str
) -> None:
    result = serve(runner, ui_index, option, "0.0.0.0")
    assert result.exit_code == 0, result.output
    (warning,) = result.stderr.strip().splitlines()
    assert warning.startswith("WARNING:") and "0.0.0.0:8612" in warning and "WITHOUT authentication" in warning
    ((argv, _),) = launched
    assert flags(argv)["--server.address"] == "0.0.0.0" and flags(argv)["--server.enableXsrfProtection"] == "true"
    assert "http://0.0.0.0:8612" in result.stdout


def test_an_ipv6_loopback_host_is_quiet_and_bracketed(runner: CliRunner, ui_index: AppConfig, launched) -> None:
    result = serve(runner, ui_index, "--host", "::1")
    assert result.exit_code == 0 and result.stderr == "", result.output
    assert "http://[::1]:8612" in result.stdout and flags(launched[0][0])["--server.address"] == "::1"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.20", False),
        ("example.org", False),
        ("localhost.example.org", False),
    ],
)
def test_only_loopback_addresses_count_as_local(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_an_upload_over_the_cap_is_refused_before_decoding() -> None:
    with pytest.raises(DataError, match=f"more than the {MAX_UPLOAD_MB} MB upload limit"):
        decode_upload(b"\0" * (MAX_UPLOAD_BYTES + 1), "../../etc/big.png")


@pytest.fixture(scope="module")
def linked_index(tmp_path_factory) -> tuple[AppConfig, str]:
    """A tiny index whose first browsed frame (first identity, first video, first frame) now links to a file
    outside the collection; returns the config and that frame's stored path."""
    tmp = tmp_path_factory.mktemp("ui_linked")
    root = tmp / "synthvox"
    synthesize(root, identities=3, videos_per_identity=2, frames=4, size=32, seed=0, workers=1, progress=False)
    checkpoint = save_tiny_model(tmp / "tiny.safetensors", seed=0)
    build_index(root, checkpoint, tmp / "index", workers=0, device="cpu", progress=False)
    with Retriever(tmp / "index", checkpoint, device="cpu") as retriever:
        first = retriever.videos().iloc[0]
        stored = retriever.video_frames(first["identity"], first["video"])["path"].iloc[0]
        file, _ = retriever.store.frame_file(stored)
    outside = tmp / "outside.png"
    shutil.copyfile(file, outside)
    file.unlink()
    file.symlink_to(outside)
    return AppConfig(tmp / "index", checkpoint, "cpu"), stored


def test_a_frame_linking_outside_the_collection_is_a_message_naming_it(
    linked_index: tuple[AppConfig, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, stored = linked_index
    for name, value in config.to_env().items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT).run()
    at = at.radio(key="query:source").set_value(BROWSE).run()  # browsing shows the first frame: the linked one
    assert not at.exception, at.exception
    message = at.error[0].value
    assert stored in message and "leads outside its collection root" in message
    at = at.select_slider(key="query:frame").set_value(2).run()  # an ordinary frame of the same video still works
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.image, "the ordinary frame and its hits are shown"
