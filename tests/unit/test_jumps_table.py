"""detect_jumps_in_results: selection, NaN handling, the tables, and calibration on null curves."""

from __future__ import annotations

import numpy as np
import pytest

from ndt.errors import DetectorError, NdtError
from ndt.io.store import JUMP_COLUMNS, Results
from ndt.jumps import detect_jumps_in_results
from ndt.jumps.validation import ar1

STEPS = np.array([0, 1, 2, 3, 5, 8, 13, 21, 34, 55] + list(range(100, 1600, 50)), dtype=np.int64)


def _results(n_layers: int = 3, jump_layer: int = 1, jump_at: int = 20, seed: int = 0) -> Results:
    rng = np.random.default_rng(seed)
    n = STEPS.size
    trend = 4 * (1 - np.exp(-np.arange(n) / 8.0))[:, None]
    values = trend + 0.1 * rng.standard_normal((n, n_layers))
    values[jump_at:, jump_layer] += 2.0
    other = 2 + 0.1 * rng.standard_normal((n, n_layers))
    return Results(
        steps=STEPS,
        layers=[f"blocks.{i}.mlp" for i in range(n_layers)],
        metrics={"stable_rank": values, "participation_ratio": other},
    )


def test_planted_jump_is_significant_in_its_layer_only() -> None:
    report = detect_jumps_in_results(_results(), metrics=["stable_rank"])
    significant = report.table[report.table["significant"]]
    # The fast start (a rise of 4 over the first ten checkpoints, one step apart) is a
    # transition of every layer; after it, only the planted jump.
    late = significant[significant["prev_step"] >= STEPS[10]]
    assert list(late["layer"]) == ["blocks.1.mlp"]
    row = late.iloc[0]
    assert row["step"] == STEPS[20] and row["prev_step"] == STEPS[19]
    assert row["delta"] == pytest.approx(row["value_after"] - row["value_before"])
    assert tuple(report.table.columns) == JUMP_COLUMNS
    assert report.expected_false_discoveries == pytest.approx(0.05 * report.n_significant)
    spans = report.transitions[["prev_step", "step", "layers"]].values.tolist()
    assert [STEPS[19], STEPS[20], "blocks.1.mlp"] in spans
    assert all(start < STEPS[10] for start, _, _ in spans if start != STEPS[19])


def test_every_metric_by_default_and_q_values_are_benjamini_hochberg() -> None:
    report = detect_jumps_in_results(_results(), method="local", fdr=0.05)
    assert report.n_curves == 6 and report.n_tests == 6 * (STEPS.size - 1)
    assert report.n_intervals == STEPS.size - 1
    # Benjamini-Hochberg's bounds, whatever the other p-values: p <= q <= p m, and a
    # significant row has q <= fdr.
    table = report.table
    m = report.n_tests
    for row in table[table["significant"]].itertuples():
        assert row.q_value >= row.p_value and row.q_value <= 0.05
        assert row.q_value <= row.p_value * m
    settings = report.settings()
    for key in ("method", "fdr", "n_tests", "n_intervals", "tolerance", "half_window"):
        assert key in settings


def test_metric_all_and_layer_globs_select_curves() -> None:
    report = detect_jumps_in_results(_results(), metrics=["all"], layers=["blocks.[01].*"])
    assert report.n_curves == 4
    assert set(report.table["layer"]) <= {"blocks.0.mlp", "blocks.1.mlp"}


def test_nan_points_are_skipped_and_counted() -> None:
    results = _results()
    results.metrics["stable_rank"][[3, 30], 0] = np.nan
    report = detect_jumps_in_results(results)
    assert report.nan_points == (("blocks.0.mlp", "stable_rank", 2),)
    assert report.table["value_before"].notna().all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"metrics": ["rank"]}, "no metric rank.*stable_rank, participation_ratio"),
        ({"layers": ["encoder.*"]}, "matches no layer; the layers are blocks.0.mlp"),
        ({"fdr": 1.5}, "fdr"),
        # 2 n_tests / fdr surrogates would be 2e247: refused instead of allocated.
    ],
)
def test_bad_selection_names_what_exists(kwargs: dict, match: str) -> None:
    with pytest.raises(NdtError, match=match):
        detect_jumps_in_results(_results(), **kwargs)


def test_empty_file_and_short_curves_are_refused() -> None:
    empty = Results(steps=np.array([], dtype=np.int64), layers=[], metrics={})
    with pytest.raises(DetectorError, match="no curves"):
        detect_jumps_in_results(empty)
    short = Results(steps=np.arange(6), layers=["a"], metrics={"stable_rank": np.ones((6, 1))})
    with pytest.raises(DetectorError, match="at least 8"):
        detect_jumps_in_results(short)


@pytest.mark.parametrize("kind", ["noise", "drift"])
def test_defaults_stay_quiet_on_null_curves(kind: str) -> None:
    """100 seeded one-curve trials: at most 8 may show a transition (nominal level 5 %)."""
    t = np.linspace(0, 1, 40)
    steps = np.arange(40) * 25
    fired = 0
    for trial in range(100):
        rng = np.random.default_rng(trial)
        curve = rng.standard_normal(40)
        if kind == "drift":
            curve += rng.uniform(2, 10) * (1 - np.exp(-t / rng.uniform(0.15, 0.5)))
        results = Results(steps=steps, layers=["x"], metrics={"stable_rank": curve[:, None]})
        fired += detect_jumps_in_results(results).n_transitions > 0
    # Measured with this code: 3 of 100 for noise and 2 of 100 for drift.
    assert fired <= 8


def test_defaults_stay_calibrated_on_autocorrelated_noise() -> None:
    """AR(1) noise (phi = 0.8) wanders like a curve with steps; the null must know it."""
    steps = np.arange(40) * 25
    fired = 0
    for trial in range(100):
        curve = ar1(np.random.default_rng(1000 + trial), 40, 0.8)
        results = Results(steps=steps, layers=["x"], metrics={"stable_rank": curve[:, None]})
        fired += detect_jumps_in_results(results).n_transitions > 0
    # Measured: 2 of 100; nominal 5 %.
    assert fired <= 8
