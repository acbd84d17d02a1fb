"""Figures of the curves: matplotlib plots, a self-contained HTML page, plotly (optional).

The names here are the reference API's figures of tracker results (`ndt.visualization.plots`
and, with plotly, `ndt.visualization.interactive`), with ndtracker's layout. The figures of
a results file (every layer, significant jumps, phases, transitions), which ``ndt plot``
draws, are `ndt.visualization.curves`, `ndt.visualization.heatmaps`, `plot_results` and
`write_html_report`.

matplotlib (a dependency) is imported only when a figure is drawn, so that commands and
scripts that draw nothing do not pay for it; figures are drawn on the Agg canvas and never
touch pyplot's global state. plotly is imported on first use of an interactive name.

Every name here is imported on first use, so that `ndt.visualization.plot_defaults` (for
`ndt plot --help`) loads without numpy or pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ndt.lazy import lazy_names

_EXPORTS = {
    "plot_metric_grid": "ndt.visualization.curves",
    "plot_layer_heatmap": "ndt.visualization.heatmaps",
    "write_html_report": "ndt.visualization.page",
    "plot_correlation_heatmap": "ndt.visualization.plots",
    "plot_jumps": "ndt.visualization.plots",
    "plot_metrics_comparison": "ndt.visualization.plots",
    "plot_phases": "ndt.visualization.plots",
    "plot_single_metric": "ndt.visualization.plots",
    "plot_results": "ndt.visualization.results_figures",
    "create_dashboard": "ndt.visualization.interactive",
    "create_interactive_plot": "ndt.visualization.interactive",
    "create_multi_layer_plot": "ndt.visualization.interactive",
}

__all__ = [
    "create_dashboard",
    "create_interactive_plot",
    "create_multi_layer_plot",
    "plot_correlation_heatmap",
    "plot_jumps",
    "plot_layer_heatmap",
    "plot_metric_grid",
    "plot_metrics_comparison",
    "plot_phases",
    "plot_results",
    "plot_single_metric",
    "write_html_report",
]

if TYPE_CHECKING:  # pragma: no cover
    from ndt.visualization.curves import plot_metric_grid
    from ndt.visualization.heatmaps import plot_layer_heatmap
    from ndt.visualization.page import write_html_report
    from ndt.visualization.plots import (
        plot_correlation_heatmap,
        plot_jumps,
        plot_metrics_comparison,
        plot_phases,
        plot_single_metric,
    )
    from ndt.visualization.results_figures import plot_results


__getattr__ = lazy_names(__name__, _EXPORTS)
