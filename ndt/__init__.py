"""ndt: replay a training run's checkpoints and track each layer's dimensionality."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ndt.lazy import lazy_names

__version__ = "0.1.0"

# Public names, imported on first use so that `import ndt` (and `ndt --help`) stays fast.
_EXPORTS = {
    "HighFrequencyTracker": "ndt.core.tracker",
    "ActivationCapture": "ndt.core.hooks",
    "JumpDetector": "ndt.core.jump_detector",
    "Jump": "ndt.core.jump_detector",
    "export_to_hdf5": "ndt.export.hdf5",
    "export_to_csv": "ndt.export.csv",
    "export_to_json": "ndt.export.json",
    "load_from_hdf5": "ndt.export.hdf5",
    "load_from_csv": "ndt.export.csv",
    "load_from_json": "ndt.export.json",
    "plot_phases": "ndt.visualization",
    "plot_metrics_comparison": "ndt.visualization",
    "plot_single_metric": "ndt.visualization",
    "plot_jumps": "ndt.visualization",
    "ActivationAnalyzer": "ndt.analysis",
    "DimensionalityMetrics": "ndt.core.tracker",
    "get_handler": "ndt.architectures",
    "detect_architecture": "ndt.architectures",
    "load_results": "ndt.io.store",
    "read_results": "ndt.io.store",
    "Phase2Checkpointer": "ndt.io.checkpoint_writer",
}

__all__ = [
    "ActivationAnalyzer",
    "ActivationCapture",
    "DimensionalityMetrics",
    "HighFrequencyTracker",
    "Jump",
    "JumpDetector",
    "Phase2Checkpointer",
    "__version__",
    "detect_architecture",
    "export_to_csv",
    "export_to_hdf5",
    "export_to_json",
    "get_handler",
    "load_from_csv",
    "load_from_hdf5",
    "load_from_json",
    "load_results",
    "plot_jumps",
    "plot_metrics_comparison",
    "plot_phases",
    "plot_single_metric",
    "read_results",
]

if TYPE_CHECKING:  # pragma: no cover
    from ndt.analysis import ActivationAnalyzer
    from ndt.architectures import detect_architecture, get_handler
    from ndt.core.hooks import ActivationCapture
    from ndt.core.jump_detector import Jump, JumpDetector
    from ndt.core.tracker import DimensionalityMetrics, HighFrequencyTracker
    from ndt.export.csv import export_to_csv, load_from_csv
    from ndt.export.hdf5 import export_to_hdf5, load_from_hdf5
    from ndt.export.json import export_to_json, load_from_json
    from ndt.io.checkpoint_writer import Phase2Checkpointer
    from ndt.io.store import load_results, read_results
    from ndt.visualization import (
        plot_jumps,
        plot_metrics_comparison,
        plot_phases,
        plot_single_metric,
    )


__getattr__ = lazy_names(__name__, _EXPORTS)
