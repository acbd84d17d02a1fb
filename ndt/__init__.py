"""ndt: replay a training run's checkpoints and track each layer's dimensionality."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Public names, imported on first use so that `import ndt` (and `ndt --help`) stays fast.
_EXPORTS = {
    "HighFrequencyTracker": "ndt.core.tracker",
    "ActivationCapture": "ndt.core.hooks",
    "JumpDetector": "ndt.core.jump_detector",
    "Jump": "ndt.core.jump_detector",
    "export_to_hdf5": "ndt.io.export",
    "export_to_csv": "ndt.io.export",
    "load_results": "ndt.io.store",
    "read_results": "ndt.io.store",
    "Phase2Checkpointer": "ndt.io.checkpoint_writer",
}

__all__ = [
    "ActivationCapture",
    "HighFrequencyTracker",
    "Jump",
    "JumpDetector",
    "Phase2Checkpointer",
    "__version__",
    "export_to_csv",
    "export_to_hdf5",
    "load_results",
    "read_results",
]

if TYPE_CHECKING:  # pragma: no cover
    from ndt.core.hooks import ActivationCapture
    from ndt.core.jump_detector import Jump, JumpDetector
    from ndt.core.tracker import HighFrequencyTracker
    from ndt.io.checkpoint_writer import Phase2Checkpointer
    from ndt.io.export import export_to_csv, export_to_hdf5
    from ndt.io.store import load_results, read_results


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ndt' has no attribute {name!r}")
