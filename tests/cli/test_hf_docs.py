"""Every command in docs/huggingface.md's code blocks runs, from the repository root."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from ndt.io.store import read_results

pytest.importorskip("transformers")
ROOT = Path(__file__).parents[2]
PAGE = ROOT / "docs" / "huggingface.md"


def commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
    lines = [line for block in blocks for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("ndt ")]


def test_the_page_runs(ndt, tmp_path, monkeypatch):
    found = commands()
    assert len(found) == 7
    # Outputs go to tmp_path; the fixtures are read where they are.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fixtures").symlink_to(ROOT / "fixtures")
    for args in found:
        result = ndt(*args)
        assert result.exit_code == 0, f"ndt {' '.join(args)}\n{result.output}"
    assert (tmp_path / "gpt2.html").is_file()
    assert (tmp_path / "gpt2-compare" / "report.html").is_file()
    assert read_results(tmp_path / "gpt2-last.h5").provenance.tokens == "last"
    assert list(read_results(tmp_path / "gpt2.h5").steps) == [50, 100, 150, 200, 250, 300]
