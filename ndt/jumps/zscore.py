"""Rolling-window z-score detector, the reference library's `JumpDetector` rule."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ndt.jumps.detection import Detector, require, runs


class ZScoreDetector(Detector):
    """Flag point i when it lies more than `z_threshold` SDs from the previous window's mean.

    For each point i with at least `min_samples` points before it, the window is the
    `window_size` points before i (fewer near the start); z_i = (x_i - mean) / std. A
    run of consecutive flagged points (a step keeps later points far from a window that
    still holds pre-step values) is one detection, at its first point, scored by |z| there.

    Args:
        window_size: Points in the trailing window.
        z_threshold: |z| above which a point is flagged.
        min_samples: Points needed before the first point can be tested (at least 2).
    """

    name = "zscore"

    def __init__(self, window_size: int = 10, z_threshold: float = 3.0, min_samples: int = 5):
        self.window_size = window_size
        self.z_threshold = z_threshold
        self.min_samples = min_samples

    def z_scores(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """z of each point against its trailing window; NaN where it cannot be computed."""
        require(self.window_size >= 2, f"window_size must be at least 2, got {self.window_size}")
        require(self.min_samples >= 2, f"min_samples must be at least 2, got {self.min_samples}")
        require(self.z_threshold > 0, f"z_threshold must be positive, got {self.z_threshold}")
        values = np.asarray(values, dtype=np.float64)
        z = np.full(values.size, np.nan)
        for i in range(self.min_samples, values.size):
            window = values[max(0, i - self.window_size) : i]
            spread = window.std(ddof=1)
            # A flat window (spread 0) has no scale to measure a deviation against.
            if spread > 1e-12 * max(1.0, abs(window.mean())):
                z[i] = (values[i] - window.mean()) / spread
        return z

    def locate(self, values: NDArray[np.float64]) -> list[tuple[int, float]]:
        z = self.z_scores(values)
        flags = np.nan_to_num(np.abs(z)) > self.z_threshold
        return [(start, float(abs(z[start]))) for start, _ in runs(flags)]
