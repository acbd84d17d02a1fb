"""`all`: run several detectors and report, per jump, which of them found it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ndt.jumps.detection import (
    Detection,
    Detector,
    check_curve,
    make_detection,
    noise_scale,
    require,
)


class AgreementDetector(Detector):
    """Merge the detections of several detectors that lie within `tolerance` checkpoints.

    Detections are sorted by index and chained while consecutive ones are at most
    `tolerance` checkpoints apart; each chain is one jump, placed at the index most of its
    detectors chose (ties: the largest first difference), with ``methods`` naming every
    detector in the chain. Its score is |x_k - x_{k-1}| over the curve's robust noise SD,
    a scale the detectors share.

    Args:
        detectors: The detectors to run, each with its own parameters.
        tolerance: Largest distance, in checkpoints, between detections of one jump.
    """

    name = "all"

    def __init__(self, detectors: Sequence[Detector], tolerance: int = 1):
        self.detectors = tuple(detectors)
        self.tolerance = tolerance

    def params(self) -> dict[str, object]:
        """Tolerance, and each member detector's parameters under its name."""
        merged: dict[str, object] = {"tolerance": self.tolerance}
        for detector in self.detectors:
            merged.update({f"{detector.name}.{k}": v for k, v in detector.params().items()})
        return merged

    def detect(self, steps: NDArray[np.int64], values: NDArray[np.float64]) -> list[Detection]:
        """Run every member detector on one curve and merge their detections."""
        require(self.tolerance >= 0, f"tolerance must be non-negative, got {self.tolerance}")
        require(len(self.detectors) > 0, "the `all` method needs at least one detector")
        steps, values = check_curve(steps, values)
        found = sorted(
            (d for detector in self.detectors for d in detector.detect(steps, values)),
            key=lambda d: d.index,
        )
        chains: list[list[Detection]] = []
        for detection in found:
            if chains and detection.index - chains[-1][-1].index <= self.tolerance:
                chains[-1].append(detection)
            else:
                chains.append([detection])
        sigma = noise_scale(values) or float(values.std()) or 1.0
        return [self._merge(steps, values, chain, sigma) for chain in chains]

    def _merge(
        self,
        steps: NDArray[np.int64],
        values: NDArray[np.float64],
        chain: list[Detection],
        sigma: float,
    ) -> Detection:
        votes: dict[int, set[str]] = {}
        for detection in chain:
            votes.setdefault(detection.index, set()).update(detection.methods)
        diffs = np.abs(np.diff(values))
        index = max(votes, key=lambda k: (len(votes[k]), diffs[k - 1]))
        order = [d.name for d in self.detectors]
        methods = {name for d in chain for name in d.methods}
        detection = make_detection(steps, values, index, diffs[index - 1] / sigma, self.name)
        return Detection(
            **{**vars(detection), "methods": tuple(m for m in order if m in methods)},
        )
