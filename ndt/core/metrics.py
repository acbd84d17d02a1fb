"""The metric registry: each dimensionality metric's name and metadata, in one place.

A metric is an entry here (its name, axis label, unit, whether its values are integers) and
its function of the spectrum in `ndt.core.estimators`, registered under the same name
(importing `ndt.core.estimators` fails if either lacks the other). Everything else derives
from this table: the `--metric` choices and defaults of the commands, the plots' axis
labels, the columns of results files and exports, and the table in docs/metrics.md (a test
holds the docs to it). This module imports nothing heavy, so that `ndt track --help` can
list the metrics without numpy or torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Metric:
    """One dimensionality metric's metadata.

    Attributes:
        name: The one name of the metric: function, registry key, stored dataset, CSV
            column, `--metric` value and docs heading.
        label: Axis label: the quantity and its formula.
        unit: What the values count ("dimensions", "components", "fraction", "ratio").
        integer: Whether every value is an integer (NaN aside), such as a count.
    """

    name: str
    label: str
    unit: str
    integer: bool = False

    @property
    def axis_label(self) -> str:
        """The label with its unit, as the plots show it."""
        return f"{self.label}  ({self.unit})"


#: Every metric, in the order of results files, tables and plots.
REGISTRY: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("stable_rank", "stable rank  Σλ / λmax", "dimensions"),
        Metric("participation_ratio", "participation ratio  (Σλ)² / Σλ²", "dimensions"),
        Metric(
            "cumulative_energy_90",
            "cumulative energy 90 %  min k: λ₁ + … + λₖ ≥ 0.9 Σλ",
            "components",
            integer=True,
        ),
        Metric("nuclear_norm_ratio", "nuclear-norm ratio  Σσ / σmax", "ratio"),
        Metric("effective_rank", "effective rank  exp(entropy of σ)", "dimensions"),
        Metric("dormant_fraction", "dormant units", "fraction"),
    )
}
#: What `ndt track` and the tracker compute unless told otherwise: every metric.
DEFAULT_METRICS: tuple[str, ...] = tuple(REGISTRY)

Definitions = Literal["ndt", "ndtracker"]
#: Metric definitions: ndt's, or ndtracker's (docs/metrics.md).
DEFINITIONS: tuple[str, ...] = ("ndt", "ndtracker")
