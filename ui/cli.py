"""`index ui`: serve the browser UI over an index. Thin: check the index and checkpoint, then hand over to Streamlit.

The `index` group that a user runs (`ui.index_command`) names this command by import path beside the other layers'
commands. The shared option helpers come from `model.cli_common` and the default index from `retrieval.cli`, so
this layer imports only `retrieval` and `model` (DESIGN.md); the app reaches the index only through `Retriever`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import click

from model.cli_common import CHECKPOINT_HELP, device_option, resolve_checkpoint
from retrieval.cli import INDEX_HELP, default_index
from ui.settings import DEFAULT_ADDRESS, DEFAULT_PORT, AppConfig, network_warning

if TYPE_CHECKING:
    import torch


@click.command()
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None, help=INDEX_HELP)
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None, help=CHECKPOINT_HELP)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True, help="TCP port to serve on."
)
@click.option(
    "--host",
    "--address",
    "host",
    default=DEFAULT_ADDRESS,
    show_default=True,
    help="Address to bind. The UI has no login: any address but loopback "
    "(e.g. 0.0.0.0, every network this machine is on) serves it to whoever can reach it, and a "
    "warning says so.",
)
@device_option
def ui(index_dir: Path | None, checkpoint: Path | None, port: int, host: str, device: torch.device) -> None:
    """Browse, query and reenact the index in a web browser (Streamlit) until Ctrl-C.

    Pages: Query (upload a photo or pick a frame; see the k frames in the nearest pose), Reenact (a source face in
    the pose of the query and its results), Disentangle (the paper's Fig. 7 for a video) and Overview (counts, the
    manifest and a map of the pose codes).

    Example: index ui --index demo/index --port 8501
    """
    from retrieval.search import Retriever
    from ui.server import serve

    if importlib.util.find_spec("streamlit") is None:  # the `ui` extra: every other command works without it
        raise click.ClickException("the UI needs Streamlit, which is not installed: pip install 'posedex[ui]'")
    index_dir = index_dir or default_index()
    checkpoint = resolve_checkpoint(checkpoint)
    with Retriever(index_dir, checkpoint, device="cpu"):  # a bad index or checkpoint: one line and exit 2, here
        pass
    warning = network_warning(host, port)
    if warning is not None:
        click.secho(warning, err=True, fg="red", bold=True)
    url_host = f"[{host}]" if ":" in host else host  # an IPv6 address is bracketed in a URL
    click.echo(f"posedex UI: http://{url_host}:{port} serving {index_dir} (Ctrl-C stops it)")
    # The app gets the device checked while parsing (auto resolved here), as text: it travels in the environment.
    serve(AppConfig(index_dir, checkpoint, str(device)), address=host, port=port)
