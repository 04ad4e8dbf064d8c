"""What the `daegan` and `index` command lines share: how bad input ends, bounded options, the lazy group.

It sits in the lowest layer so that every layer's commands can use it without importing a layer above (DESIGN.md).

Choices made:

- Bad input is one line on stderr and exit code 2 (`BadInput`), never a traceback: a `DataError` (a file or folder
  that cannot be used) and a bad option value (`click.BadParameter`: `--device tpu`, `-k 0`) alike. A missing option
  keeps click's usage lines, since there the user needs the syntax, not a reason.
- `--device` is checked while the options are parsed (`DEVICE`), by `model.device.pick_device`, so every command
  that takes it refuses a device this machine lacks before doing any work, and receives a `torch.device`.
- `LazyGroup` is click's documented "Lazily Loading Subcommands" pattern: a group names its subcommands by import
  path (``"module:attribute"``), so the group that assembles the `index` command imports no layer itself, and a
  layer is imported only when one of its commands runs or a help page lists it.
- The shipped checkpoint (package data, found by `model.resources`) is the default `--checkpoint` of the `index`
  commands; a missing one is a usage error.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from model.data.errors import DataError
from model.resources import DEFAULT_CHECKPOINT_NAME, default_checkpoint

if TYPE_CHECKING:
    import torch

REPO = Path(__file__).resolve().parents[1]  # the source checkout: where `make run` builds the demo index
CHECKPOINT_HELP = f"Model .safetensors checkpoint [default: the shipped {DEFAULT_CHECKPOINT_NAME} when it exists]."
POSITIVE = click.IntRange(min=1)
Decorated = TypeVar("Decorated", bound=Callable[..., Any])  # a command function, as click's decorators take it


class BadInput(click.ClickException):
    """A user's file or folder cannot be used: one line, exit code 2."""

    exit_code = 2


class DataErrorGroup(click.Group):
    """A click group whose commands report `DataError` and bad option values as `BadInput`: one line, exit 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DataError as err:
            raise BadInput(str(err)) from err
        except click.MissingParameter:
            raise
        except click.BadParameter as err:  # "Invalid value for '-k': 0 is not in the range x>=1."
            raise BadInput(err.format_message()) from err


class DeviceType(click.ParamType):
    """`--device`: auto, cpu, cuda or cuda:N, converted by `pick_device` into a `torch.device` this machine has."""

    name = "device"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> torch.device:
        from model.device import pick_device  # torch: imported when a command runs, not for its --help

        try:
            return pick_device(str(value))  # str(): click may pass a value already converted
        except ValueError as err:
            self.fail(str(err), param, ctx)


DEVICE = DeviceType()


def device_option(command: Decorated) -> Decorated:
    """The one `--device` option of every command that runs the model, as a decorator."""
    return click.option("--device", type=DEVICE, default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")(
        command
    )


class LazyGroup(DataErrorGroup):
    """A group whose subcommands are named by import path and imported only when asked for.

    `lazy_subcommands` maps a command name to ``"module:attribute"``, the way `[project.scripts]` names a function.
    """

    def __init__(self, *args, lazy_subcommands: Mapping[str, str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_subcommands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_subcommands:
            return super().get_command(ctx, cmd_name)
        module_name, _, attribute = self.lazy_subcommands[cmd_name].partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):  # a wrong import path fails here, not as an odd click error later
            raise TypeError(f"{self.lazy_subcommands[cmd_name]} is not a click command")
        return command


def resolve_checkpoint(checkpoint: Path | None) -> Path:
    """`--checkpoint`, or the shipped checkpoint (package data, `model.resources`) when none was given."""
    if checkpoint is not None:
        return checkpoint
    shipped = default_checkpoint()
    if not shipped.is_file():
        raise click.UsageError(f"--checkpoint is required ({shipped} does not exist)")
    return shipped
