"""The reference API's figures (ndt.visualization.plots / interactive) hold the data given."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ndt.core.jump_detector import Jump
from ndt.visualization import (
    plot_correlation_heatmap,
    plot_jumps,
    plot_metrics_comparison,
    plot_phases,
    plot_single_metric,
)


def tracker_frame(offset: float = 0.0) -> pd.DataFrame:
    """Columns as HighFrequencyTracker.get_results writes them (ndt's names)."""
    steps = np.arange(0, 60, 10)
    return pd.DataFrame({
        "step": steps, "loss": 1.0 / (1 + steps), "grad_norm": np.nan,
        "stable_rank": 2.0 + 0.1 * steps + offset, "participation_ratio": 1.5 + 0.05 * steps,
        "cumulative_energy_90": (2 + steps // 20).astype(float),
        "nuclear_norm_ratio": 3.0 - 0.01 * steps,
    })  # fmt: skip


def test_single_metric_and_comparison_draw_the_columns():
    df = tracker_frame()
    fig = plot_single_metric(df, "participation_ratio", layer_name="fc1")
    main, twin = fig.axes
    np.testing.assert_array_equal(main.lines[0].get_ydata(), df["participation_ratio"])
    np.testing.assert_array_equal(twin.lines[0].get_ydata(), df["loss"])
    assert main.get_title() == "Participation Ratio - fc1"
    fig = plot_metrics_comparison(df)
    # ndt's cumulative_energy_90 stands in for ndtracker's cumulative_90.
    assert [ax.get_ylabel() for ax in fig.axes[:4]] == [
        "Stable Rank", "Participation Ratio", "Cumulative Energy 90", "Nuclear Norm Ratio"
    ]  # fmt: skip
    np.testing.assert_array_equal(fig.axes[2].lines[0].get_ydata(), df["cumulative_energy_90"])


def test_jumps_of_any_metric_name_are_all_drawn():
    df = tracker_frame()
    jumps = [Jump(20, 4.0, 3.0, 4.0, "fc1_stable_rank"), Jump(25, 5.0, 4.0, 9.0, "other")]
    ax = plot_jumps(df, jumps).axes[0]
    np.testing.assert_array_equal(ax.collections[0].get_offsets(), [[20, 4.0], [25, 9.0]])


def test_phases_skip_layers_without_the_metric_and_correlations_match_pandas():
    results = {"a": tracker_frame(), "b": tracker_frame(1.0), "x": pd.DataFrame({"step": [0]})}
    ax = plot_phases(results).axes[0]
    assert [line.get_label() for line in ax.lines] == ["a", "b"]
    df = tracker_frame()
    columns = ["stable_rank", "nuclear_norm_ratio", "loss"]
    ax = plot_correlation_heatmap(df, columns).axes[0]
    expected = df[columns].corr().to_numpy().ravel()
    np.testing.assert_allclose([float(t.get_text()) for t in ax.texts], expected, atol=0.005)


def test_interactive_figures():
    pytest.importorskip("plotly")
    from ndt.visualization import create_dashboard, create_interactive_plot

    df = tracker_frame()
    fig = create_interactive_plot(df, layer_name="fc1")
    assert [t.name for t in fig.data][-1] == "Loss" and len(fig.data) == 5
    np.testing.assert_array_equal(fig.data[0].y, df["stable_rank"])
    dashboard = create_dashboard({"fc1": df, "fc2": tracker_frame(2.0)})
    assert len(dashboard.data) == 8
    np.testing.assert_array_equal(dashboard.data[1].y, df["stable_rank"] + 2.0)
