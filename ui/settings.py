"""What the browser UI is started with and the bounds it keeps: shared by the launcher (`ui.cli`, `ui.server`) and
the Streamlit app, which runs in another process and so learns its index from the environment.

Choices (the issue leaves them open):
- The launcher hands the app its index, checkpoint and device through environment variables (`AppConfig.to_env`):
  Streamlit re-executes the app script on every interaction, and `AppTest` runs it in-process, where both read the
  same variables; script arguments after ``--`` would not reach `AppTest`.
- The server binds to loopback (`DEFAULT_ADDRESS`) unless the user names another host: the app has no login, so
  any other address serves the index and the model to whoever can reach the machine, and the launcher says so
  (`network_warning`). A host name other than ``localhost`` is not looked up: it counts as reachable.
- Uploads are bounded twice: Streamlit refuses bodies over `MAX_UPLOAD_MB` before the app sees them, and the app
  refuses pictures over `MAX_UPLOAD_PIXELS` from their header, before decoding (Pillow's bomb guard stays on too).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_INDEX = "POSEDEX_UI_INDEX"  # the index folder the app serves
ENV_CHECKPOINT = "POSEDEX_UI_CHECKPOINT"  # the checkpoint the index was built with
ENV_DEVICE = "POSEDEX_UI_DEVICE"  # auto, cpu, cuda or cuda:N

DEFAULT_ADDRESS = "127.0.0.1"  # localhost only: the UI has no authentication
DEFAULT_PORT = 8501  # Streamlit's usual port
MAX_UPLOAD_MB = 16  # per file (Streamlit's server.maxUploadSize): a 12 MP phone JPEG is 3-8 MB
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024  # the same bound, checked again by the app on the bytes it gets
MAX_UPLOAD_PIXELS = 50_000_000  # width x height: larger than any phone photo, far below Pillow's bomb limit


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the UI on this machine (127.0.0.0/8, ::1 or ``localhost``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:  # a host name (or "", which Streamlit takes as every interface): assume the network
        return False


def network_warning(host: str, port: int) -> str | None:
    """The one line the launcher prints when `host` exposes the UI beyond this machine; None on loopback."""
    if is_loopback(host):
        return None
    return (
        f"WARNING: the posedex UI on {host or 'every interface'}:{port} is reachable from the network WITHOUT "
        "authentication: anyone who can reach this machine can browse the index and run the model "
        f"(use --host {DEFAULT_ADDRESS} to keep it local)."
    )


@dataclass(frozen=True)
class AppConfig:
    """Which index the app serves, with which model, on which device."""

    index_dir: Path
    checkpoint: Path
    device: str = "auto"

    def to_env(self) -> dict[str, str]:
        """The environment variables that carry this config to the app process."""
        return {
            ENV_INDEX: str(Path(self.index_dir).resolve()),
            ENV_CHECKPOINT: str(Path(self.checkpoint).resolve()),
            ENV_DEVICE: self.device,
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> AppConfig:
        """The config the launcher set; a `KeyError` names the variable when the app was started without it."""
        missing = [name for name in (ENV_INDEX, ENV_CHECKPOINT) if not environ.get(name)]
        if missing:
            raise KeyError(f"{', '.join(missing)} not set: start the UI with `index ui --index DIR`")
        return cls(Path(environ[ENV_INDEX]), Path(environ[ENV_CHECKPOINT]), environ.get(ENV_DEVICE) or "auto")
