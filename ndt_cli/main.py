"""The `ndt` app: registers every command and turns library errors into one stderr line.

Command modules are imported only when needed: `ndt jumps results.h5` loads the jumps
command and what it uses, not torch, so the commands that read a results file start fast.
`app` (every command, for `ndt --help` and in-process tests) is built on first access.

Every failure a user can cause ends here as one line on stderr: a library `NdtError` and
an `OSError` (read-only folder, full disk, missing or unreadable file, a folder where a file
was expected) as `Error: ...` with exit code 1, Ctrl-C as `Interrupted.` with exit code 130,
at any moment from the first import on. `NDT_DEBUG=1` shows the traceback instead.
"""

from __future__ import annotations

import sys

try:  # Ctrl-C while the command starts: one line, no traceback.
    import contextlib
    import functools
    import importlib
    import logging
    import os
    import signal
    from collections.abc import Callable, Iterator
    from typing import Annotated

    import typer

    from ndt import __version__
    from ndt.errors import NdtError, describe
    from ndt.replay.allocator import prefer_huge_pages
    from ndt_cli._output import err
except KeyboardInterrupt:  # pragma: no cover - timing dependent
    sys.stderr.write("Interrupted.\n")
    raise SystemExit(130) from None

INTERRUPTED = 130

# The commands that build or load a model, and so load torch; the others (results files,
# synthetic runs) never do.
LOADS_TORCH = frozenset({"track", "compare", "layers", "probe", "trust"})

# name -> (module, function), in the order of `ndt --help`: the pipeline first.
COMMANDS: dict[str, tuple[str, str]] = {
    "track": ("ndt_cli.track", "track"),
    "merge": ("ndt_cli.merge", "merge"),
    "jumps": ("ndt_cli.jumps", "jumps"),
    "compare": ("ndt_cli.compare", "compare"),
    "plot": ("ndt_cli.plot", "plot"),
    "layers": ("ndt_cli.layers", "layers"),
    "probe": ("ndt_cli.probe", "probe"),
    "export": ("ndt_cli.export", "export"),
    "summary": ("ndt_cli.summary", "summary"),
    "trust": ("ndt_cli.trust", "trust"),
    "validate-detector": ("ndt_cli.jumps", "validate_detector_command"),
}
# The first line of each command's docstring, for `ndt --help` without importing the
# commands (a test holds each to its docstring).
SUMMARIES: dict[str, str] = {
    "track": "Replay checkpoints on a fixed probe and record each layer's dimensionality per step.",
    "merge": "Merge results files made with the same options into one, steps in order.",
    "jumps": "Find the transitions of a run: where its curves changed, and how far to trust it.",
    "compare": "Compare every layer before and after a transition: metrics, neurons, PCA, "
    "clusters, CKA.",
    "plot": "Plot the per-layer curves of a results file, with significant jumps marked.",
    "layers": "List the layers `ndt track` would analyse, and check that a checkpoint loads.",
    "probe": "Write a probe batch: the fixed inputs every checkpoint is replayed on.",
    "export": "Export the curves as a tidy table: one row per step and layer, one column per "
    "metric.",
    "summary": "Summarise many runs: how many significant jumps each has, and at which steps.",
    "trust": "Allow `ndt track`, `ndt layers` and `ndt compare` to run the code DIR's ndt.toml "
    "names.",
    "validate-detector": "Measure ndt jumps on synthetic runs saved like real ones, whose "
    "answer is known.",
}


def os_error_message(exc: OSError) -> str:
    """``FILE: cause`` for an OSError, naming the file it carries (both of a rename)."""
    cause = exc.strerror or describe(exc)
    names = [str(name) for name in (exc.filename, exc.filename2) if name is not None]
    return f"{' -> '.join(names)}: {cause}" if names else cause


_interrupted_said = False


def _say_interrupted() -> None:
    """Print `Interrupted.` once per command, wherever the Ctrl-C was caught."""
    global _interrupted_said
    if not _interrupted_said:
        _interrupted_said = True
        err.print("Interrupted.", soft_wrap=True)


def _guarded(command: Callable) -> Callable:
    """Translate NdtError and OSError into `Error: ...` on stderr and exit code 1, and
    Ctrl-C into `Interrupted.` and exit code 130 (NDT_DEBUG=1 re-raises)."""

    @functools.wraps(command)
    def wrapper(*args: object, **kwargs: object) -> object:
        global _interrupted_said
        _interrupted_said = False  # one process may run several commands (tests)
        try:
            return command(*args, **kwargs)
        except (NdtError, OSError) as exc:
            if os.environ.get("NDT_DEBUG") == "1":
                raise
            message = os_error_message(exc) if isinstance(exc, OSError) else str(exc)
            err.print(f"Error: {message}", soft_wrap=True, markup=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            if os.environ.get("NDT_DEBUG") == "1":
                raise
            _say_interrupted()
            raise typer.Exit(INTERRUPTED) from None

    return wrapper


class _WarningLine(logging.Handler):
    """Library warnings (``logging``) as `Warning: ...` lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"Warning: {record.getMessage()}", soft_wrap=True, markup=False)


def _show_library_warnings() -> None:
    library = logging.getLogger("ndt")
    if not any(isinstance(h, _WarningLine) for h in library.handlers):
        library.addHandler(_WarningLine(logging.WARNING))


def _version(value: bool) -> None:
    if value:
        print(f"ndt {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Replay checkpoints, find transitions, and compare what changed around them."""


def build_app(names: list[str] | None = None, *, summaries_only: bool = False) -> typer.Typer:
    """The Typer app with the named commands (all of them by default).

    With `summaries_only`, every command is a stand-in that carries only its summary: what
    `ndt --help` shows, without importing any command (and so numpy, pandas or torch).
    """
    built = typer.Typer(
        name="ndt",
        help=(
            "Look inside a training run after the fact: replay its checkpoints on a fixed "
            "probe batch and track each layer's representational dimensionality.\n\n"
            "Example: ndt track fixtures/digits-mlp/ckpts && ndt jumps results.h5"
        ),
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode="rich",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    built.callback()(_root)
    _show_library_warnings()
    for name in names or COMMANDS:
        if summaries_only:
            built.command(name, help=SUMMARIES[name])(_stand_in)
            continue
        module, function = COMMANDS[name]
        built.command(name)(_guarded(getattr(importlib.import_module(module), function)))
    return built


def _stand_in() -> None:  # pragma: no cover - only listed by `ndt --help`, never run
    raise typer.Exit(2)


def __getattr__(name: str) -> object:
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(f"module 'ndt_cli.main' has no attribute {name!r}")


def _interrupt_again(unraisable: object) -> None:
    """A Ctrl-C that lands in a finaliser (a weakref callback) is only "ignored" there, with
    a traceback, and the command would go on: stop now, with the one line. Every write is
    atomic, so the results file is the old one or the new one (stale temporary files are
    removed by the next writer)."""
    if isinstance(getattr(unraisable, "exc_value", None), KeyboardInterrupt):
        if os.environ.get("NDT_DEBUG") != "1":
            _say_interrupted()
            sys.stderr.flush()
            os._exit(INTERRUPTED)
    sys.__unraisablehook__(unraisable)  # type: ignore[arg-type]


@contextlib.contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Hold a Ctrl-C until the block is done, then raise it."""
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, None):  # Ctrl-C ignored (nohup, a background job)
        yield
        return
    caught: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _load_libraries(command: str) -> None:
    """Import the numerical libraries a command runs on, with Ctrl-C held meanwhile: torch's
    start-up imports numpy and clears whatever error that raises, a Ctrl-C included, which
    left a half-imported numpy behind and ended in a misleading error later (found by the
    Ctrl-C trials). Held, the Ctrl-C lands once the imports are done (a second or two)."""
    with _ctrl_c_held():
        importlib.import_module("numpy")
        if command in LOADS_TORCH:
            importlib.import_module("torch")


def main() -> None:
    """Console-script entry point: loads only the command asked for, when one is."""
    sys.unraisablehook = _interrupt_again
    try:
        prefer_huge_pages()  # before anything imports torch (ndt/replay/allocator.py)
        asked = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
        if asked is None and "--version" in sys.argv[1:]:
            print(f"ndt {__version__}")
            return
        # Importing a command (torch) takes most of the first second: it is in here.
        if asked in COMMANDS:
            if not {"--help", "-h"} & set(sys.argv[1:]):
                _load_libraries(asked)
            build_app([asked])()
        elif asked is None:
            build_app(summaries_only=True)()  # `ndt`, `ndt --help`: the list of commands
        else:
            build_app()()  # an unknown command: Typer names it and lists the real ones
    except KeyboardInterrupt:
        if os.environ.get("NDT_DEBUG") == "1":
            raise
        _say_interrupted()
        raise SystemExit(INTERRUPTED) from None
    except SystemExit as exc:
        # Typer turns a Ctrl-C outside the command itself into exit code 130 silently.
        if exc.code == INTERRUPTED:
            _say_interrupted()
        raise


if __name__ == "__main__":  # python -m ndt_cli.main
    main()
