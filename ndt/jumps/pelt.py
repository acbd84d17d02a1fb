"""Change points by PELT (Killick et al. 2012) from the ruptures library."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ndt.jumps.detection import Detector, noise_scale, require
from ndt.jumps.jump_defaults import COSTS


class PeltDetector(Detector):
    """Segment the curve with ruptures' PELT and report each boundary as a jump.

    The default penalty scales with the curve's noise: 2 sigma^2 ln(n) for the ``l2``
    cost (a BIC-like price of a mean shift), 2 sigma ln(n) for ``l1``, with sigma the
    robust noise SD of `noise_scale`; ``rbf`` is scale-free and gets ln(n). A boundary at
    index k is scored by |mean of the segment after - mean of the segment before| / sigma.

    Args:
        cost: ruptures cost model: "l2" (mean shifts), "l1" (median shifts) or "rbf".
        penalty: Penalty per change point; None for the noise-scaled default.
        min_size: Fewest points in a segment.
    """

    name = "pelt"

    def __init__(self, cost: str = "l2", penalty: float | None = None, min_size: int = 2):
        self.cost = cost
        self.penalty = penalty
        self.min_size = min_size

    def resolved_penalty(self, values: NDArray[np.float64]) -> float:
        """The penalty used on `values`: `penalty`, or the noise-scaled default."""
        if self.penalty is not None:
            return float(self.penalty)
        sigma = noise_scale(values)
        log_n = np.log(max(values.size, 2))
        if self.cost == "l2":
            return 2.0 * sigma * sigma * log_n
        if self.cost == "l1":
            return 2.0 * sigma * log_n
        return float(log_n)

    def locate(self, values: NDArray[np.float64]) -> list[tuple[int, float]]:
        import ruptures

        require(self.cost in COSTS, f"cost must be one of {', '.join(COSTS)}, got {self.cost!r}")
        require(self.min_size >= 1, f"min_size must be at least 1, got {self.min_size}")
        require(
            self.penalty is None or self.penalty >= 0,
            f"penalty must be non-negative, got {self.penalty}",
        )
        if values.size < 2 * self.min_size:
            return []
        penalty = self.resolved_penalty(values)
        if penalty <= 0:
            # A noiseless curve gives a zero default penalty: every point would be a segment.
            penalty = 1e-12 * max(1.0, float(np.abs(values).max()))
        algo = ruptures.Pelt(model=self.cost, min_size=self.min_size, jump=1)
        ends = algo.fit(values.reshape(-1, 1)).predict(pen=penalty)
        bounds = [0, *ends]
        sigma = noise_scale(values) or float(values.std()) or 1.0
        found = []
        for left, index, right in zip(bounds, bounds[1:-1], bounds[2:], strict=False):
            shift = values[index:right].mean() - values[left:index].mean()
            found.append((int(index), float(abs(shift) / sigma)))
        return found
