"""`JumpDetector` and `Jump`, as the reference API names them, on top of `ndt.jumps`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ndt.errors import DetectorError
from ndt.jumps.zscore import ZScoreDetector


@dataclass(frozen=True)
class Jump:
    """A jump in one metric's series.

    Attributes:
        step: Step of the point that jumped (`step_offset` + its index).
        z_score: Its z-score against the trailing window (signed).
        value_before: Mean of the trailing window it was compared with.
        value_after: The point's value.
        metric_name: Name of the metric the series holds.
    """

    step: int
    z_score: float
    value_before: float
    value_after: float
    metric_name: str = ""


class JumpDetector:
    """Rolling-window z-score jump detector with the reference library's constructor.

    A point is a jump when it lies more than `z_threshold` standard deviations from the
    mean of the `window_size` points before it; a run of such points is reported once, at
    its first point. `ndt jumps --method zscore` uses the same rule (`ZScoreDetector`) and
    adds a p-value; this class only flags.

    Args:
        window_size: Points in the trailing window.
        z_threshold: |z| above which a point is a jump.
        min_samples: Points needed before the first point can be tested.

    Example:
        >>> detector = JumpDetector(window_size=10, z_threshold=3.0, min_samples=5)
        >>> jumps = detector.detect_jumps([1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 5.0, 5.1],
        ...                               metric_name="stable_rank", step_offset=100)
        >>> [(j.step, round(j.value_after, 2)) for j in jumps]
        [(106, 5.0)]
    """

    def __init__(self, window_size: int = 10, z_threshold: float = 3.0, min_samples: int = 5):
        # Checked here, not at use, because the reference library raises at construction.
        if window_size < 1:
            raise DetectorError(f"window_size must be >= 1, got {window_size}")
        if z_threshold <= 0:
            raise DetectorError(f"z_threshold must be positive, got {z_threshold}")
        if min_samples < 1:
            raise DetectorError(f"min_samples must be >= 1, got {min_samples}")
        self.window_size = window_size
        self.z_threshold = z_threshold
        self.min_samples = min_samples

    def _rule(self) -> ZScoreDetector:
        # A window of one point has no spread: the rule needs two at least.
        return ZScoreDetector(max(2, self.window_size), self.z_threshold, max(2, self.min_samples))

    def detect_jumps(
        self,
        values: Sequence[float] | np.ndarray,
        metric_name: str = "",
        step_offset: int = 0,
    ) -> list[Jump]:
        """Find the jumps of a series sampled at consecutive steps.

        Args:
            values: The series, shape (n_steps,); NaN points are never flagged.
            metric_name: Stored in each Jump.
            step_offset: Step of the first value; point i is at step_offset + i.

        Returns:
            The jumps, in step order.
        """
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            return []
        rule = self._rule()
        finite = np.flatnonzero(np.isfinite(values))
        z = np.full(values.size, np.nan)
        z[finite] = rule.z_scores(values[finite])
        jumps = []
        for index, _ in rule.locate(values[finite]):
            position = int(finite[index])
            window = values[finite[max(0, index - rule.window_size) : index]]
            jumps.append(
                Jump(
                    step=int(step_offset + position),
                    z_score=float(z[position]),
                    value_before=float(window.mean()),
                    value_after=float(values[position]),
                    metric_name=metric_name,
                )
            )
        return jumps

    def detect_jumps_with_direction(
        self,
        values: Sequence[float] | np.ndarray,
        direction: str | None = None,
        metric_name: str = "",
        step_offset: int = 0,
    ) -> list[Jump]:
        """`detect_jumps`, keeping only upward (``"up"``: the value rose above its window's
        mean) or downward (``"down"``) jumps; None keeps both.

        Raises:
            DetectorError (a ValueError): for any other `direction`.
        """
        if direction not in (None, "up", "down"):
            raise DetectorError(f"direction must be 'up', 'down' or None, got {direction!r}")
        jumps = self.detect_jumps(values, metric_name=metric_name, step_offset=step_offset)
        if direction == "up":
            return [j for j in jumps if j.value_after > j.value_before]
        if direction == "down":
            return [j for j in jumps if j.value_after < j.value_before]
        return jumps

    def compute_rolling_statistics(
        self, values: Sequence[float] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Trailing-window mean, standard deviation and z-score of each point.

        Returns:
            Three arrays of shape (n_values,): 0 where a point has fewer than `min_samples`
            points before it (and z 0 where its window is flat).

        Raises:
            DetectorError (a ValueError): if `values` is empty.
        """
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            raise DetectorError("values cannot be empty")
        rule = self._rule()
        means = np.zeros(values.size)
        stds = np.zeros(values.size)
        for i in range(rule.min_samples, values.size):
            window = values[max(0, i - rule.window_size) : i]
            means[i] = window.mean()
            stds[i] = window.std(ddof=1)
        z_scores = np.nan_to_num(rule.z_scores(values))
        return means, stds, z_scores
