"""`index serve`: the HTTP JSON API over an index (`ui.http_api`). Thin: load the index and the model once, then
run uvicorn in this process until Ctrl-C.

Choices:
- One process, one worker: the model and the index are loaded once, before the server starts (a bad index or
  checkpoint is one line and exit 2, as for `index query`), and every request shares them (`ui.served_index`).
- Loopback by default, as `index ui`: the API has no login, so any other address is announced by a warning in
  red on stderr, and on loopback only loopback `Host` headers are answered (`ui.http_api.local_hosts`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import click

from model.cli_common import CHECKPOINT_HELP, device_option, resolve_checkpoint
from retrieval.cli import INDEX_HELP, default_index
from ui.settings import DEFAULT_ADDRESS, is_loopback

if TYPE_CHECKING:
    import torch

DEFAULT_API_PORT = 8000  # uvicorn's usual port


def api_network_warning(host: str, port: int) -> str | None:
    """The one line `index serve` prints when `host` exposes the API beyond this machine; None on loopback."""
    if is_loopback(host):
        return None
    return (
        f"WARNING: the posedex API on {host or 'every interface'}:{port} is reachable from the network WITHOUT "
        "authentication: anyone who can reach this machine can query the index, read its frames and run the "
        f"model (use --host {DEFAULT_ADDRESS} to keep it local)."
    )


@click.command()
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None, help=INDEX_HELP)
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None, help=CHECKPOINT_HELP)
@click.option(
    "--host",
    default=DEFAULT_ADDRESS,
    show_default=True,
    help="Address to bind. The API has no login: any address but loopback (e.g. 0.0.0.0, every network "
    "this machine is on) serves it to whoever can reach it, and a warning says so.",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=DEFAULT_API_PORT, show_default=True, help="TCP port to serve on."
)
@device_option
def serve(index_dir: Path | None, checkpoint: Path | None, host: str, port: int, device: torch.device) -> None:
    """Serve the index as an HTTP JSON API until Ctrl-C: query by photo or frame, frames, reenactment.

    Endpoints: GET /healthz, GET /info, POST /query (a photo `image` or a `frame_id`, k and the hit rules of
    index query; answers what index query --json prints), GET /frames/ID (PNG), POST /reenact (a `source` photo
    and a `driving` photo or `frame_id`; PNG). The OpenAPI page is /docs.

    Example: index serve --port 8000, then curl -F image=@photo.jpg -F k=5 http://127.0.0.1:8000/query
    """
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise click.ClickException(
            "the API needs FastAPI and uvicorn, which are not installed: pip install 'posedex[serve]'"
        )
    import uvicorn

    from retrieval.search import Retriever
    from ui.http_api import create_app, local_hosts

    index_dir = index_dir or default_index()
    checkpoint = resolve_checkpoint(checkpoint)
    with Retriever(index_dir, checkpoint, device=device) as retriever:  # a bad index or checkpoint: exit 2, here
        warning = api_network_warning(host, port)
        if warning is not None:
            click.secho(warning, err=True, fg="red", bold=True)
        url_host = f"[{host}]" if ":" in host else host  # an IPv6 address is bracketed in a URL
        click.echo(f"posedex API: http://{url_host}:{port} serving {index_dir} (docs at /docs; Ctrl-C stops it)")
        app = create_app(retriever, allowed_hosts=local_hosts(host))
        uvicorn.run(app, host=host, port=port, workers=1, log_level="info")
