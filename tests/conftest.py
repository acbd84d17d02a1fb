"""Shared test helpers: the fixtures folder and a tiny checkpoint series built on the fly."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(autouse=True)
def private_trust_file(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Path:
    """Every test gets its own, empty trust file: no test reads or writes the user's."""
    path = tmp_path_factory.mktemp("trust") / "trusted.json"
    monkeypatch.setenv("NDT_TRUST_FILE", str(path))
    return path


_HOLD_LOCK = """
import sys
from ndt.io.results_lock import results_lock
with results_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes stdin
"""


@pytest.fixture
def hold_lock() -> Iterator[Callable[[Path], subprocess.Popen]]:
    """Start a separate process that holds a results file's write lock until its stdin is
    closed (or the test ends)."""
    started: list[subprocess.Popen] = []

    def start(path: Path) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(FIXTURES.parent)}
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD_LOCK, str(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        started.append(holder)
        assert holder.stdout.readline().strip() == "held"
        return holder

    yield start
    for holder in started:
        if not holder.stdin.closed:
            holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def tiny_run(tmp_path: Path) -> Path:
    """A 5-checkpoint run of a small zoo MLP with an ndt.toml and a probe, in tmp_path/run."""
    from ndt.io.checkpoints import save_checkpoint
    from ndt.io.manifest import ModelSpec, write_manifest
    from ndt.io.probe import save_probe
    from ndt.models.spec import build_model

    torch.manual_seed(0)
    spec = ModelSpec("mlp", {"in_features": 12, "hidden": [16, 8], "n_classes": 3})
    model = build_model(spec)
    run = tmp_path / "run"
    save_probe(run / "probe.safetensors", torch.randn(40, 12), torch.randint(0, 3, (40,)))
    for step in (0, 10, 20, 30, 40):
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.1 * torch.randn_like(parameter))
        save_checkpoint(model, run / "ckpts", step)
    write_manifest(run / "ckpts", spec, probe=run / "probe.safetensors")
    return run
