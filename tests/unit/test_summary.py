"""Batch summary: significant jumps per results file, read from each file's /jumps table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ndt.errors import NdtError, ResultsFormatError
from ndt.io.store import Results, write_jumps, write_results
from ndt.jumps.summary import (
    JumpAt,
    results_files,
    significant_jumps,
    summarize_run,
    summarize_runs,
)


def _write_run(path, steps=(0, 10, 20, 30), layers=("fc1", "head")):
    rng = np.random.default_rng(0)
    metrics = {"stable_rank": rng.random((len(steps), len(layers)))}
    write_results(path, Results(steps=np.array(steps), layers=list(layers), metrics=metrics))
    return path


def _jumps(rows):
    return pd.DataFrame(rows, columns=["layer", "metric", "step", "q_value", "significant"])


def test_counts_only_significant_rows_and_lists_their_steps(tmp_path):
    path = _write_run(tmp_path / "run_a.h5")
    table = _jumps(
        [
            ("head", "stable_rank", 20, 0.01, True),
            ("fc1", "stable_rank", 10, 0.30, False),
            ("fc1", "participation_ratio", 20, 0.02, True),
            ("fc1", "stable_rank", 30, 0.04, True),
        ]
    )
    write_jumps(path, table, {"fdr": 0.05})
    run = summarize_run(path)
    assert run.analysed and run.name == "run_a"
    assert (run.n_steps, run.n_layers, run.first_step, run.last_step) == (4, 2, 0, 30)
    assert run.n_jumps == 3  # the three rows with significant=True
    assert run.jump_steps == [20, 30]
    assert run.jumps == (
        JumpAt("fc1", "participation_ratio", 20),
        JumpAt("head", "stable_rank", 20),
        JumpAt("fc1", "stable_rank", 30),
    )


def test_file_without_jumps_table_is_not_analysed(tmp_path):
    run = summarize_run(_write_run(tmp_path / "r.h5"))
    assert not run.analysed
    assert run.n_jumps is None and run.jump_steps == []


def test_analysed_file_with_no_jump_counts_zero(tmp_path):
    path = _write_run(tmp_path / "r.h5")
    write_jumps(path, _jumps([]), {"fdr": 0.05})
    run = summarize_run(path)
    assert run.analysed and run.n_jumps == 0


def test_significance_falls_back_to_q_value_and_fdr():
    table = pd.DataFrame(
        {"layer": ["a", "b", "c"], "step": [1, 2, 3], "q_value": [0.01, 0.2, 0.05]}
    )
    assert significant_jumps(table, {"fdr": 0.05})["layer"].tolist() == ["a", "c"]
    assert significant_jumps(table, {})["layer"].tolist() == ["a", "b", "c"]


def test_folders_expand_to_their_h5_files_once(tmp_path):
    for name in ("b.h5", "a.h5"):
        _write_run(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a run")
    files = results_files([tmp_path, tmp_path / "a.h5"])
    assert [f.name for f in files] == ["a.h5", "b.h5"]
    assert [run.name for run in summarize_runs([tmp_path])] == ["a", "b"]


def test_errors(tmp_path):
    with pytest.raises(NdtError, match="does not exist"):
        summarize_runs([tmp_path / "missing.h5"])
    with pytest.raises(NdtError, match=r"no \*\.h5 files in"):
        summarize_runs([tmp_path])
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    with pytest.raises(ResultsFormatError, match="is not an HDF5 file"):
        summarize_runs([tmp_path])
