"""Derivative-threshold detector: |np.gradient(values)| > k * std, as in the reference doc."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ndt.jumps.detection import Detector, require, runs


class GradientDetector(Detector):
    """Flag points whose per-checkpoint gradient exceeds `threshold` times the gradients' SD.

    ``np.gradient`` takes central differences, so a step between points k-1 and k raises
    the gradient at both; each run of flagged points is one detection, placed at the
    largest first difference |x_k - x_{k-1}| the run touches, and scored by its largest
    |gradient| / std(gradient).

    Args:
        threshold: Multiple of the gradients' standard deviation (the reference uses 2.5).
    """

    name = "gradient"

    def __init__(self, threshold: float = 2.5):
        self.threshold = threshold

    def locate(self, values: NDArray[np.float64]) -> list[tuple[int, float]]:
        require(self.threshold > 0, f"threshold must be positive, got {self.threshold}")
        if values.size < 3:
            return []
        gradient = np.gradient(values)
        spread = gradient.std()
        if spread <= 0:
            return []
        ratio = np.abs(gradient) / spread
        diffs = np.abs(np.diff(values))
        found = []
        for start, end in runs(ratio > self.threshold):
            lo, hi = max(start, 1), min(end + 1, values.size - 1)
            index = lo + int(np.argmax(diffs[lo - 1 : hi]))
            found.append((index, float(ratio[start : end + 1].max())))
        return found
