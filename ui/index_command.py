"""The `index` command a user runs (the console script): one group naming every layer's subcommands by import path.

Each layer keeps its own commands in its `cli.py`; this group only names them (click's "Lazily Loading
Subcommands", `model.cli_common.LazyGroup`), so it imports none of them itself, and a layer is imported when one of
its commands runs or a help page lists it. It sits in the top layer because only the top may know every layer
(DESIGN.md: nothing in `indexer/` knows a UI exists).
"""

from __future__ import annotations

import click

from model import __version__
from model.cli_common import LazyGroup

SUBCOMMANDS = {
    "build": "indexer.cli:build",
    "add": "indexer.cli:add",
    "info": "indexer.cli:info",
    "verify": "indexer.cli:verify",
    "migrate": "indexer.cli:migrate",
    "query": "retrieval.cli:query",
    "ui": "ui.cli:ui",
    "serve": "ui.serve_cli:serve",
}


@click.group(cls=LazyGroup, lazy_subcommands=SUBCOMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="index")
def main() -> None:
    """posedex pose index: find frames of other people in the same pose and expression."""


if __name__ == "__main__":
    main()
