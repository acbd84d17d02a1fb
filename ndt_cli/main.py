"""The `ndt` app: registers every command and turns library errors into one stderr line."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Annotated

import typer

from ndt import __version__
from ndt.errors import NdtError
from ndt_cli import compare as compare_command
from ndt_cli import export as export_command
from ndt_cli import jumps as jumps_command
from ndt_cli import layers, probe, track
from ndt_cli import plot as plot_command
from ndt_cli import summary as summary_command
from ndt_cli._output import err

app = typer.Typer(
    name="ndt",
    help=(
        "Look inside a training run after the fact: replay its checkpoints on a fixed probe "
        "batch and track each layer's representational dimensionality.\n\n"
        "Example: ndt track fixtures/digits-mlp/ckpts && ndt jumps results.h5"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _guarded(command: Callable) -> Callable:
    """Translate NdtError into `Error: ...` on stderr and exit code 1 (NDT_DEBUG=1 re-raises)."""

    @functools.wraps(command)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return command(*args, **kwargs)
        except NdtError as exc:
            if os.environ.get("NDT_DEBUG") == "1":
                raise
            err.print(f"Error: {exc}", soft_wrap=True, markup=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("Interrupted.", soft_wrap=True)
            raise typer.Exit(130) from None

    return wrapper


def _register(command: Callable, name: str) -> None:
    app.command(name)(_guarded(command))


# The order of `ndt --help`: the pipeline first, then the helpers around it.
_register(track.track, "track")
_register(jumps_command.jumps, "jumps")
_register(compare_command.compare, "compare")
_register(plot_command.plot, "plot")
_register(layers.layers, "layers")
_register(probe.probe, "probe")
_register(export_command.export, "export")
_register(summary_command.summary, "summary")
_register(jumps_command.validate_detector_command, "validate-detector")


def _version(value: bool) -> None:
    if value:
        print(f"ndt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Replay checkpoints, find transitions, and compare what changed around them."""


def main() -> None:
    """Console-script entry point."""
    app()
