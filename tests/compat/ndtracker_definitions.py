"""pytest plugin: make ``definitions="ndtracker"`` the estimators' default for one run.

Loaded with ``-p ndtracker_definitions`` by `run_ndtracker_suite.py` for the tests whose
expected values are ndtracker's definitions (uncentred activations, sigma-based
participation ratio). It wraps the public estimator functions before the test modules
import them; nothing else changes.
"""

from __future__ import annotations

import functools

NAMES = ("stable_rank", "participation_ratio", "cumulative_energy_90", "nuclear_norm_ratio")


def pytest_configure(config: object) -> None:
    import ndt.core.estimators as estimators

    for name in NAMES:
        function = getattr(estimators, name)
        setattr(estimators, name, functools.partial(function, definitions="ndtracker"))
