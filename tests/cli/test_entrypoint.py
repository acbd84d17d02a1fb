"""The installed `ndt` console script, run as a user's shell runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

import ndt

NDT = shutil.which("ndt")
pytestmark = pytest.mark.skipif(NDT is None, reason="the ndt console script is not installed")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([NDT, *args], capture_output=True, text=True, timeout=120)


def test_version_and_help():
    assert run("--version").stdout.strip() == f"ndt {ndt.__version__}"
    help_text = run("--help").stdout
    for command in ("track", "layers"):
        assert command in help_text
    assert "ndt track fixtures/digits-mlp/ckpts" in run("track", "--help").stdout


def test_failing_command_prints_one_line(tmp_path):
    result = run(
        "track",
        str(tmp_path / "missing"),
        "--model",
        "mlp",
        "--probe",
        str(tmp_path / "p.safetensors"),
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: probe file {tmp_path / 'p.safetensors'} does not exist"
    ]
    assert result.stdout == ""


def test_module_entry_point_matches_script():
    result = subprocess.run(
        [sys.executable, "-c", "from ndt_cli.main import main; main()", "--version"],
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == f"ndt {ndt.__version__}"


@pytest.mark.parametrize("module", ["ndt_cli", "ndt_cli.main"])
def test_python_dash_m_runs_the_command(module):
    result = subprocess.run(
        [sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == f"ndt {ndt.__version__}"


@pytest.mark.parametrize("command", ["jumps", "export", "summary", "plot"])
def test_commands_that_read_results_do_not_import_torch(command):
    code = (
        "import sys\n"
        f"sys.argv = ['ndt', '{command}', '--help']\n"
        "from ndt_cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


def test_ctrl_c_during_the_library_imports_lands_after_them():
    """A Ctrl-C while numpy and torch load is held until they are in (torch's start-up
    clears errors raised while it imports numpy, a Ctrl-C included), then raised."""
    import os
    import signal

    from ndt_cli.main import _ctrl_c_held

    finished = []
    with pytest.raises(KeyboardInterrupt), _ctrl_c_held():
        os.kill(os.getpid(), signal.SIGINT)
        finished.append(True)  # the block goes on to its end
    assert finished == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# Each command without a model -> the library module its body calls.
WITHOUT_A_MODEL = {
    "jumps": "ndt.jumps.table", "export": "ndt.io.export", "summary": "ndt.jumps.summary",
    "plot": "ndt.visualization.results_figures", "merge": "ndt.io.merge",
    "validate-detector": "ndt.jumps.validation",
}  # fmt: skip


@pytest.mark.parametrize("command", list(WITHOUT_A_MODEL))
def test_commands_without_a_model_never_load_torch(command):
    """Neither the held imports of `main` nor the command's library load torch: a command
    that reads results files or makes synthetic runs starts without its second of import."""
    from ndt_cli.main import COMMANDS, LOADS_TORCH

    assert command not in LOADS_TORCH
    assert set(COMMANDS) == LOADS_TORCH | set(WITHOUT_A_MODEL)
    code = (
        "import sys, importlib\n"
        "from ndt_cli.main import _load_libraries\n"
        f"_load_libraries({command!r})\n"
        f"importlib.import_module({COMMANDS[command][0]!r})\n"
        f"importlib.import_module({WITHOUT_A_MODEL[command]!r})\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr
