"""Starting the Streamlit server for the app: the command line, its settings, and handing the process over to it.

Choices:
- The server runs `streamlit run ui/app.py` in this Python (`sys.executable -m streamlit`), so it sees the same
  installed packages; `serve` replaces the launching process with it (`os.execve`), so Ctrl-C and a supervisor's
  signals reach the server directly and no parent is left waiting.
- Settings are flags, never a config file written somewhere: headless (no browser opened, no e-mail prompt),
  bound to `address` (localhost unless the user asks otherwise), XSRF protection on (Streamlit's default, set
  explicitly so no config file or environment variable can turn it off behind the app's back: uploads are POSTs
  that a page on another site could otherwise forge), uploads capped at `MAX_UPLOAD_MB`, no usage
  statistics sent (this machine has no network to send them to anyway), no file watcher (a served app does not
  reload on edits, and watching a tree costs a thread), a minimal toolbar (no "Deploy" button: this is a local
  tool).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

from ui.settings import MAX_UPLOAD_MB, AppConfig

APP = Path(__file__).resolve().with_name("app.py")


def streamlit_command(*, address: str, port: int) -> list[str]:
    """The command line that serves the app on `address:port`."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.enableXsrfProtection",
        "true",
        "--server.maxUploadSize",
        str(MAX_UPLOAD_MB),
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


def streamlit_env(config: AppConfig) -> dict[str, str]:
    """This process's environment plus the variables that tell the app which index to serve."""
    return {**os.environ, **config.to_env()}


def serve(config: AppConfig, *, address: str, port: int) -> NoReturn:
    """Become the Streamlit server for `config` (never returns)."""
    command = streamlit_command(address=address, port=port)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, streamlit_env(config))
