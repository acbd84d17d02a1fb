"""`ndt track` on every bundled fixture matches the float64 reference in expected.csv, which
fixtures/make_fixtures.py computes with plain hooks and numpy's SVD, independently of ndt."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ndt.core.estimators import METRICS
from ndt.io.store import load_results

FIXTURE_RUNS = ["digits-mlp", "digits-cnn", "modadd-transformer", "digits-transition"]


@pytest.mark.parametrize("name", FIXTURE_RUNS)
def test_fixture_matches_float64_reference(ndt, fixtures_dir, tmp_path, name):
    out = tmp_path / f"{name}.h5"
    result = ndt("track", fixtures_dir / name / "ckpts", "--out", out, "--batch-size", "100", "-q")
    assert result.exit_code == 0, result.output
    got = load_results(out).sort_values(["step", "layer"]).reset_index(drop=True)
    want = (
        pd.read_csv(fixtures_dir / name / "expected.csv")
        .sort_values(["step", "layer"])
        .reset_index(drop=True)
    )
    assert got[["step", "layer"]].equals(want[["step", "layer"]])
    # Metrics added after the fixtures were made are not in expected.csv (test_fixtures.py).
    assert [m for m in want.columns[2:] if m not in METRICS] == []
    for metric in [m for m in METRICS if m in want.columns]:
        np.testing.assert_allclose(
            got[metric], want[metric], rtol=1e-4, atol=1e-12, err_msg=f"{name} {metric}"
        )
