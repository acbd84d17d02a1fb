"""The detectors by name, and how to build one from command-line style options."""

from __future__ import annotations

from ndt.errors import DetectorError
from ndt.jumps.agreement import AgreementDetector
from ndt.jumps.detection import Detector
from ndt.jumps.gradient import GradientDetector
from ndt.jumps.jump_defaults import (
    AGREEMENT_METHOD,
    DETECTOR_NAMES,
    LOCAL_METHOD,
    METHODS,
)
from ndt.jumps.pelt import PeltDetector
from ndt.jumps.zscore import ZScoreDetector

DETECTORS: dict[str, type[Detector]] = {
    ZScoreDetector.name: ZScoreDetector,
    GradientDetector.name: GradientDetector,
    PeltDetector.name: PeltDetector,
}
# The method names live in jump_defaults (light, for `ndt jumps --help`): they must match.
if (*DETECTORS, AgreementDetector.name) != (*DETECTOR_NAMES, AGREEMENT_METHOD):
    raise ImportError("ndt.jumps.jump_defaults must name the detectors of DETECTORS")


def make_detector(
    method: str = "pelt",
    *,
    window_size: int | None = None,
    z_threshold: float | None = None,
    min_samples: int | None = None,
    gradient_threshold: float | None = None,
    cost: str | None = None,
    penalty: float | None = None,
    tolerance: int | None = None,
) -> Detector:
    """Build the detector `method` names; a parameter left None keeps the detector default.

    Args:
        method: One of METHODS other than "local" (which uses no detector).
        window_size: zscore: points in the trailing window.
        z_threshold: zscore: |z| above which a point is flagged.
        min_samples: zscore: points needed before the first test.
        gradient_threshold: gradient: multiple of the gradients' SD.
        cost: pelt: ruptures cost model.
        penalty: pelt: penalty per change point (None: noise-scaled default).
        tolerance: all: checkpoints within which detections are the same jump.

    Raises:
        DetectorError: if `method` is unknown.
    """
    detectors = [m for m in METHODS if m != LOCAL_METHOD]
    if method not in detectors:
        raise DetectorError(f"unknown detector {method!r}; choose from {', '.join(detectors)}")
    zscore = ZScoreDetector(
        **_given(window_size=window_size, z_threshold=z_threshold, min_samples=min_samples)
    )
    gradient = GradientDetector(**_given(threshold=gradient_threshold))
    pelt = PeltDetector(**_given(cost=cost, penalty=penalty))
    if method == AgreementDetector.name:
        return AgreementDetector((zscore, gradient, pelt), **_given(tolerance=tolerance))
    return {d.name: d for d in (zscore, gradient, pelt)}[method]


def _given(**params: object) -> dict[str, object]:
    return {key: value for key, value in params.items() if value is not None}
