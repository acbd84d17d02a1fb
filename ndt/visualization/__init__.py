"""Figures of the curves: matplotlib plots, a self-contained HTML page, plotly (optional).

matplotlib (a dependency) is imported only when a figure is drawn, so that commands and
scripts that draw nothing do not pay for it; figures are drawn on the Agg canvas and never
touch pyplot's global state.
"""

from ndt.visualization.curves import plot_jumps, plot_metric_grid, plot_phases, plot_single_metric
from ndt.visualization.heatmaps import plot_correlation_heatmap, plot_layer_heatmap
from ndt.visualization.page import write_html_report
from ndt.visualization.results_figures import plot_results

__all__ = [
    "plot_correlation_heatmap",
    "plot_jumps",
    "plot_layer_heatmap",
    "plot_metric_grid",
    "plot_phases",
    "plot_results",
    "plot_single_metric",
    "write_html_report",
]
