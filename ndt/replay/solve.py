"""The last stage of a checkpoint's replay: its layers' folded spectra become its row of
metrics. The sequential loop (`ndt.replay.track`) runs it on a thread beside the next
forward pass; a cluster's task (`ndt.replay.distributed`) runs it in line."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from ndt.core.estimators import Definitions, compute_metrics
from ndt.replay.engine import FoldedSpectra


def solve_metrics(
    folded: FoldedSpectra,
    metrics: Sequence[str],
    dormant_tau: float,
    definitions: Definitions = "ndt",
) -> tuple[np.ndarray, list[str], float]:
    """Metrics of one checkpoint, shape (n_metrics, n_layers); the layers whose activations
    were not finite; and the seconds spent on them (folding included, waiting not)."""
    folded.settle()
    started = time.perf_counter()
    spectra = folded.spectra()
    rows = [
        compute_metrics(s, metrics, dormant_tau=dormant_tau, definitions=definitions)
        for s in spectra.values()
    ]
    values = np.array([[row[m] for row in rows] for m in metrics], dtype=np.float64)
    broken = [name for name, spectrum in spectra.items() if not spectrum.is_finite]
    return values, broken, time.perf_counter() - started + folded.fold_seconds
