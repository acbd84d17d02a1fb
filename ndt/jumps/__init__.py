"""Find transitions in metric curves and say how far to trust each (docs/jumps.md).

The names below are imported on first use, so that `ndt.jumps.jump_defaults` (the settings'
names and defaults, for `ndt jumps --help`) loads without numpy, scipy or pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ndt.lazy import lazy_names

_EXPORTS = {
    "AgreementDetector": "ndt.jumps.agreement",
    "Detection": "ndt.jumps.detection",
    "Detector": "ndt.jumps.detection",
    "DEFAULT_METHOD": "ndt.jumps.jump_defaults",
    "LOCAL_METHOD": "ndt.jumps.jump_defaults",
    "METHODS": "ndt.jumps.jump_defaults",
    "DETECTORS": "ndt.jumps.detectors",
    "make_detector": "ndt.jumps.detectors",
    "GradientDetector": "ndt.jumps.gradient",
    "PeltDetector": "ndt.jumps.pelt",
    "JumpReport": "ndt.jumps.table",
    "detect_jumps_in_results": "ndt.jumps.table",
    "ZScoreDetector": "ndt.jumps.zscore",
}

__all__ = [
    "AgreementDetector",
    "DEFAULT_METHOD",
    "DETECTORS",
    "Detection",
    "Detector",
    "GradientDetector",
    "JumpReport",
    "LOCAL_METHOD",
    "METHODS",
    "PeltDetector",
    "ZScoreDetector",
    "detect_jumps_in_results",
    "make_detector",
]

if TYPE_CHECKING:  # pragma: no cover
    from ndt.jumps.agreement import AgreementDetector
    from ndt.jumps.detection import Detection, Detector
    from ndt.jumps.detectors import DETECTORS, make_detector
    from ndt.jumps.gradient import GradientDetector
    from ndt.jumps.jump_defaults import DEFAULT_METHOD, LOCAL_METHOD, METHODS
    from ndt.jumps.pelt import PeltDetector
    from ndt.jumps.table import JumpReport, detect_jumps_in_results
    from ndt.jumps.zscore import ZScoreDetector


__getattr__ = lazy_names(__name__, _EXPORTS)
