"""What every detector shares: the `Detection` record and the `Detector` interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from ndt.errors import DetectorError


@dataclass(frozen=True)
class Detection:
    """One change a detector found between two consecutive checkpoints.

    Attributes:
        index: Position k in the curve: the change lies between points k-1 and k.
        step: Training step of point k.
        prev_step: Training step of point k-1.
        value_before: Curve value at `prev_step`.
        value_after: Curve value at `step`.
        score: The detector's own strength measure (see docs/jumps.md).
        methods: Names of the detectors that found it.
    """

    index: int
    step: int
    prev_step: int
    value_before: float
    value_after: float
    score: float
    methods: tuple[str, ...] = ()


class Detector:
    """A jump detector: parameters in ``__init__``, one ``detect`` method, a registry name."""

    name: ClassVar[str] = ""

    def detect(self, steps: NDArray[np.int64], values: NDArray[np.float64]) -> list[Detection]:
        """Find the jumps of one curve.

        Args:
            steps: Checkpoint steps, increasing, shape (n_points,).
            values: The curve at those steps, finite, shape (n_points,).

        Returns:
            The detections, ordered by index.
        """
        steps, values = check_curve(steps, values)
        return [
            make_detection(steps, values, index, score, self.name)
            for index, score in self.locate(values)
        ]

    def locate(self, values: NDArray[np.float64]) -> list[tuple[int, float]]:
        """Index k (a change between points k-1 and k) and score of each jump in `values`."""
        raise NotImplementedError

    def params(self) -> dict[str, object]:
        """The constructor parameters, as stored in the results file's jump settings."""
        return {key: value for key, value in vars(self).items() if not key.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.params().items())
        return f"{type(self).__name__}({args})"


def check_curve(
    steps: NDArray[np.int64], values: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Return `steps` and `values` as arrays after checking they describe one finite curve."""
    steps = np.asarray(steps, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if steps.shape != values.shape or values.ndim != 1:
        raise DetectorError(
            f"steps {steps.shape} and values {values.shape} must be 1-D of the same length"
        )
    if not np.all(np.isfinite(values)):
        raise DetectorError("the curve has NaN or infinite points; drop them before detecting")
    return steps, values


def make_detection(
    steps: NDArray[np.int64], values: NDArray[np.float64], index: int, score: float, method: str
) -> Detection:
    """The detection of a change between points ``index - 1`` and ``index``."""
    return Detection(
        index=int(index),
        step=int(steps[index]),
        prev_step=int(steps[index - 1]),
        value_before=float(values[index - 1]),
        value_after=float(values[index]),
        score=float(score),
        methods=(method,),
    )


def runs(flags: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Start and end (inclusive) of each run of consecutive True entries."""
    padded = np.concatenate([[False], np.asarray(flags, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def noise_scale(values: NDArray[np.float64]) -> float:
    """Robust noise standard deviation: MAD of first differences over sqrt(2).

    First differences remove a smooth trend, and the median ignores the few large
    differences that jumps make, so this measures the point-to-point noise only.
    """
    diffs = np.diff(values)
    if diffs.size == 0:
        return 0.0
    mad = float(np.median(np.abs(diffs - np.median(diffs))))
    return 1.4826 * mad / np.sqrt(2.0)


def require(condition: bool, message: str) -> None:
    """Raise DetectorError(message) unless `condition` holds (parameter validation)."""
    if not condition:
        raise DetectorError(message)
