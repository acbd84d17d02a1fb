"""Start-up: `ndt --help` and `ndt --version` import no command and none of the heavy
libraries, and `ndt <command> --help` imports only its command and still none of them
(issue 15); the help's summaries are the commands' own docstrings. Wall-clock figures are
in docs/performance.md, not asserted here (they depend on the machine's load)."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys

import pytest

from ndt.core.metrics import DEFINITIONS, REGISTRY
from ndt.jumps.jump_defaults import COSTS, METHODS
from ndt.models.precision import DTYPE_NAMES
from ndt_cli.main import COMMANDS, SUMMARIES

HEAVY = ("numpy", "pandas", "torch", "h5py", "scipy", "sklearn", "matplotlib", "safetensors",
         "transformers")  # fmt: skip
PROBE = """
import json, sys
from ndt_cli.main import main
sys.argv = ["ndt", *{args!r}]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""
MAIN = "import sys; from ndt_cli.main import main; sys.argv[0] = 'ndt'; main()"


def _imported(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=list(args))],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [("--help",), ("--version",), ()])
def test_help_and_version_import_no_command_and_no_heavy_library(args: tuple[str, ...]) -> None:
    modules = _imported(*args)
    ours = sorted(m for m in modules if m.split(".")[0] in ("ndt", "ndt_cli"))
    assert ours == [
        "ndt", "ndt.errors", "ndt.io", "ndt.io.json_text", "ndt.lazy", "ndt.replay",
        "ndt.replay.allocator",
        "ndt_cli", "ndt_cli._output", "ndt_cli.main",
    ]  # fmt: skip
    assert not [m for m in modules if m.split(".")[0] in HEAVY]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_summary_is_the_command_docstring(name: str) -> None:
    module, function = COMMANDS[name]
    doc = inspect.getdoc(getattr(importlib.import_module(module), function))
    assert SUMMARIES[name] == doc.splitlines()[0]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_help_imports_its_command_and_no_heavy_library(name: str) -> None:
    """`ndt <command> --help` loads that command's module, not another, and none of the
    heavy libraries: its option choices and defaults come from light modules."""
    modules = _imported(name, "--help")
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == []
    command_modules = {module for module, _ in COMMANDS.values()}
    assert sorted(command_modules & modules) == [COMMANDS[name][0]]


def _help(name: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", MAIN, name, "--help"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "300"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    ("name", "choices"),
    [("track", (*REGISTRY, *DTYPE_NAMES, *DEFINITIONS)), ("jumps", (*METHODS, *COSTS))],
)
def test_command_help_still_lists_the_choices(name: str, choices: tuple[str, ...]) -> None:
    """The light constants reach the help: metrics, dtypes, definitions, methods, costs."""
    shown = _help(name)
    assert [c for c in choices if c not in shown] == []
