"""Shared pieces of the fuzz suite: the Hypothesis profile, the seed, a real small run.

Every fuzz test runs commands in-process (typer.testing.CliRunner) and checks the same
property: the exit code is 0, 1 or 2, no traceback is printed, and after a failure the
results file that was there before is byte-identical. The seed of a run is printed in the
header and under every failing test; rerun with ``--hypothesis-seed=N`` to replay it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, settings
from typer.testing import CliRunner

from ndt_cli.main import app

# "ci": the examples of every fuzz test together are >= 300, in about a minute on 2 cores.
settings.register_profile(
    "ci",
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("long", parent=settings.get_profile("ci"), max_examples=2000)
settings.load_profile(os.environ.get("NDT_FUZZ_PROFILE", "ci"))

#: Examples per test in the "ci" profile (scaled by NDT_FUZZ_SCALE, e.g. 10 for a long run).
SCALE = float(os.environ.get("NDT_FUZZ_SCALE", "1"))


def examples(n: int) -> int:
    return max(1, round(n * SCALE))


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "hypothesis_seed", None) is None:
        config.option.hypothesis_seed = random.SystemRandom().randrange(2**32)


def pytest_report_header(config: pytest.Config) -> str:
    return f"ndt fuzz seed: {config.option.hypothesis_seed} (replay: --hypothesis-seed=N)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and "fuzz" in str(item.path):
        seed = item.config.option.hypothesis_seed
        report.sections.append(
            (
                "ndt fuzz seed",
                f"rerun with: python -m pytest {item.nodeid} --hypothesis-seed={seed}",
            )
        )


class Run:
    """A command run in-process, as a shell would see it."""

    runner = CliRunner()

    def __call__(self, *args: object):
        return self.runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def record(exit_code: int) -> None:
    """Log one case for benchmarks/reliability.py (when NDT_RELIABILITY_LOG names a file):
    the running test and the exit code it saw."""
    log = os.environ.get("NDT_RELIABILITY_LOG")
    if log:
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0]
        with open(log, "a", encoding="utf-8") as stream:
            stream.write(json.dumps({"test": test, "exit": exit_code}) + "\n")


def check(result, before: bytes | None = None, path: Path | None = None) -> None:
    """The fuzz property: exit 0, 1 or 2; no traceback; at most one `Error:` line for exit 1;
    after a failure, `path` holds `before` byte for byte."""
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output)
    event(f"exit {result.exit_code}")
    record(result.exit_code)
    assert "Traceback" not in result.output, result.output
    if result.exit_code == 1:
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, result.stderr
    if result.exit_code != 0 and path is not None and before is not None:
        assert path.read_bytes() == before, "a failed command changed the results file"


TINY_KWARGS = {"in_features": 12, "hidden": [16, 8], "n_classes": 3}


def build_tiny_run(root: Path, n_checkpoints: int = 12) -> Path:
    """`n_checkpoints` of a small zoo MLP, drifting then jumping, with ndt.toml and a probe."""
    from ndt.io.checkpoints import save_checkpoint
    from ndt.io.manifest import ModelSpec, write_manifest
    from ndt.io.probe import save_probe
    from ndt.models.spec import build_model

    torch.manual_seed(0)
    spec = ModelSpec("mlp", TINY_KWARGS)
    model = build_model(spec)
    save_probe(root / "probe.safetensors", torch.randn(48, 12), torch.randint(0, 3, (48,)))
    for index in range(n_checkpoints):
        with torch.no_grad():
            for parameter in model.parameters():
                scale = 1.0 if index == n_checkpoints // 2 else 0.05
                parameter.add_(scale * torch.randn_like(parameter))
        save_checkpoint(model, root / "ckpts", index * 10)
    write_manifest(root / "ckpts", spec, probe=root / "probe.safetensors")
    return root


class BaseRun:
    """A tiny run, and the bytes of its results file after `ndt track` and `ndt jumps`."""

    def __init__(self, root: Path, results: bytes) -> None:
        self.root, self.results = root, results

    def __repr__(self) -> str:  # Hypothesis prints it with a failing example
        return f"BaseRun({self.root}, {len(self.results)} bytes)"


@pytest.fixture(scope="session")
def base_run(tmp_path_factory) -> BaseRun:
    root = build_tiny_run(tmp_path_factory.mktemp("fuzz-run"))
    out = root / "results.h5"
    run = Run()
    for args in (("track", root / "ckpts", "--out", out, "-q"), ("jumps", out, "--all")):
        result = run(*args)
        assert result.exit_code == 0, result.output
    return BaseRun(root, out.read_bytes())


@pytest.fixture
def run() -> Run:
    return Run()


def fresh_copy(source: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    return target
