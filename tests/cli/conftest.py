"""Helpers for running commands in-process the way a shell would."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ndt_cli.main import app


class Invoke:
    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str):
        return self.runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def ndt() -> Invoke:
    return Invoke()


def assert_one_error(result, fragment: str, code: int = 1) -> None:
    """Exit `code`, exactly one `Error:` line on stderr containing `fragment`, no traceback."""
    assert result.exit_code == code, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert fragment in errors[0], errors[0]
    assert "Traceback" not in result.output


@pytest.fixture
def one_error():
    """`assert_one_error`, as a fixture for test modules."""
    return assert_one_error
