"""The names and defaults of `ndt jumps`' settings, with no heavy import, so that the
command's --help lists them without numpy or scipy. The modules that use them import them
from here (`ndt.jumps.detectors` checks that its detectors carry these names)."""

from __future__ import annotations

#: No detector: the local null test scans every interval (docs/jumps.md).
LOCAL_METHOD = "local"
#: The detectors' names (`Detector.name`), in the order of `ndt.jumps.detectors.DETECTORS`.
DETECTOR_NAMES: tuple[str, ...] = ("zscore", "gradient", "pelt")
#: The agreement of every detector (`AgreementDetector.name`).
AGREEMENT_METHOD = "all"
#: Every value `method` accepts: the local scan, the detectors, `all` for their agreement.
METHODS: tuple[str, ...] = (LOCAL_METHOD, *DETECTOR_NAMES, AGREEMENT_METHOD)
#: The method `ndt jumps` uses unless told otherwise; docs/jumps.md gives the measurements.
DEFAULT_METHOD = LOCAL_METHOD
#: PELT's cost functions.
COSTS: tuple[str, ...] = ("l2", "l1", "rbf")
#: Reference intervals on each side of a candidate interval (the local null).
HALF_WINDOW = 16
#: Every metric in the file is tested unless `metrics` narrows it (issue 11).
ALL_METRICS: tuple[str, ...] = ("all",)
#: Significant intervals at most this many checkpoints apart form one transition.
DEFAULT_TOLERANCE = 1
