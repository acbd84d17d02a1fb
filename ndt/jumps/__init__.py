"""Find transitions in metric curves and say how far to trust each (docs/jumps.md)."""

from ndt.jumps.agreement import AgreementDetector
from ndt.jumps.detection import Detection, Detector
from ndt.jumps.detectors import DEFAULT_METHOD, DETECTORS, LOCAL_METHOD, METHODS, make_detector
from ndt.jumps.gradient import GradientDetector
from ndt.jumps.pelt import PeltDetector
from ndt.jumps.table import JumpReport, detect_jumps_in_results
from ndt.jumps.zscore import ZScoreDetector

__all__ = [
    "DEFAULT_METHOD",
    "DETECTORS",
    "LOCAL_METHOD",
    "METHODS",
    "AgreementDetector",
    "Detection",
    "Detector",
    "GradientDetector",
    "JumpReport",
    "PeltDetector",
    "ZScoreDetector",
    "detect_jumps_in_results",
    "make_detector",
]
