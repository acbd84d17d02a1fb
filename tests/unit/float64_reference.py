"""The six metric definitions of docs/metrics.md written out again on numpy's float64 SVD,
with no ndt code: the yardstick the unit tests hold ndt's streamed spectra to."""

from __future__ import annotations

import numpy as np


def reference_metrics(matrix: np.ndarray, center: bool = True) -> dict[str, float]:
    """Metrics of an (n_samples, n_features) activation matrix."""
    a = np.asarray(matrix, dtype=np.float64)
    activity = np.abs(a).mean(0)
    if center:
        a = a - a.mean(0)
    sigma = np.linalg.svd(a, compute_uv=False)
    sigma = sigma[sigma > sigma[0] * max(a.shape) * np.finfo(float).eps]
    lam = sigma**2
    p = sigma / sigma.sum()
    return {
        "stable_rank": lam.sum() / lam.max(),
        "participation_ratio": lam.sum() ** 2 / (lam**2).sum(),
        "cumulative_energy_90": float(np.argmax(np.cumsum(lam) >= 0.9 * lam.sum()) + 1),
        "nuclear_norm_ratio": sigma.sum() / sigma.max(),
        "effective_rank": float(np.exp(-(p * np.log(p)).sum())),
        "dormant_fraction": float(np.mean(activity / activity.mean() <= 0.0)),
    }
