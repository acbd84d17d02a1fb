"""ndtracker 2.0.0's own test suite, fetched from PyPI, passes against ndt.

Runs `run_ndtracker_suite.py` in a subprocess (it pip-downloads the sdist into a temporary
folder, or takes the copy it cached outside the repository once its sha256 matches PyPI's,
and runs the suite in parallel pytest processes). Expected: every test passes except FeatureVisualizer's (attribution methods are
outside ndt's scope; the class points to Captum) and the three whose values are ndtracker's
uncentred definitions, which pass in the second run with ``definitions="ndtracker"``.
Skipped only when PyPI cannot be reached.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "run_ndtracker_suite.py"
sys.path.insert(0, str(SCRIPT.parent))
from run_ndtracker_suite import DEFINITION_TESTS, UNREACHABLE  # noqa: E402

N_TESTS = 230
N_FEATURE_VISUALIZER = 17
# An ndtracker bug its suite marks as a strict xfail; ndt does not have it (docs/python-api.md).
FIXED_BUGS = (
    "tests/test_tracker.py::TestTrackerEdgeCases::test_auto_detect_samples_evenly_for_30_layers",
)


def test_ndtracker_suite_passes_against_ndt(tmp_path: Path) -> None:
    out = tmp_path / "counts.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--json", str(out)],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    if done.returncode == UNREACHABLE:
        pytest.skip("PyPI cannot be reached")
    assert done.returncode == 0, done.stdout + done.stderr
    print(done.stdout)
    counts = json.loads(out.read_text())
    assert counts["total"] == N_TESTS, done.stdout
    failed = counts["failed_tests"]
    feature_visualizer = [t for t in failed if "FeatureVisualizer" in t or _is_attribution(t)]
    others = sorted(set(failed) - set(feature_visualizer) - set(DEFINITION_TESTS) - set(FIXED_BUGS))
    assert others == [], done.stdout
    assert len(feature_visualizer) == N_FEATURE_VISUALIZER, done.stdout
    assert counts["passed"] >= 205
    assert counts["definitions_ndtracker"] == dict.fromkeys(DEFINITION_TESTS, "passed")


def _is_attribution(test_id: str) -> bool:
    classes = ("TestGradCAM", "TestGradientAttributions", "TestOtherVisualizations")
    return test_id.startswith("tests/test_analysis.py::") and any(c in test_id for c in classes)
