"""Start-up: `ndt --help` and `ndt --version` import no command and none of the heavy
libraries (issue 15); the help's summaries are the commands' own docstrings."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys

import pytest

from ndt_cli.main import COMMANDS, SUMMARIES

HEAVY = ("numpy", "pandas", "torch", "h5py", "scipy", "sklearn", "matplotlib", "safetensors")
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


def _imported(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=list(args))],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [("--help",), ("--version",), ()])
def test_help_and_version_import_no_command_and_no_heavy_library(args: tuple[str, ...]) -> None:
    modules = _imported(*args)
    ours = sorted(m for m in modules if m.split(".")[0] in ("ndt", "ndt_cli"))
    assert ours == [
        "ndt", "ndt.errors", "ndt.io", "ndt.io.json_text", "ndt.replay", "ndt.replay.allocator",
        "ndt_cli", "ndt_cli._output", "ndt_cli.main",
    ]  # fmt: skip
    assert not [m for m in modules if m.split(".")[0] in HEAVY]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_summary_is_the_command_docstring(name: str) -> None:
    module, function = COMMANDS[name]
    doc = inspect.getdoc(getattr(importlib.import_module(module), function))
    assert SUMMARIES[name] == doc.splitlines()[0]
