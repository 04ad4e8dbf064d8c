"""`index`: build, query and check pose indexes. Thin: parse, call a library function, print.

The subcommands (build, add, query, info, verify, ui) arrive with the index (issue 4) and the UI (issue 5).
"""

from __future__ import annotations

import click

from model import __version__
from model.cli import DataErrorGroup


@click.group(cls=DataErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="index")
def main() -> None:
    """posedex pose index: find frames of other people in the same pose and expression."""
