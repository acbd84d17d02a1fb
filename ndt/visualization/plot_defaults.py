"""`ndt plot`'s defaults, with no heavy import, so that the command's --help shows them
without numpy, pandas or matplotlib (`ndt.visualization.results_figures` imports them)."""

from __future__ import annotations

#: The folder `plot_results` writes the default set of figures into.
DEFAULT_OUT_DIR = "ndt-plots"
