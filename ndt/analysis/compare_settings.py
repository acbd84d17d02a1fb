"""`ndt compare`'s analysis parameters and their defaults, with no heavy import, so that the
command's --help shows them without numpy or torch (the analyses import them from here)."""

from __future__ import annotations

from dataclasses import dataclass

from ndt.core.metrics import DEFAULT_METRICS

#: Sparsity (share of rows at zero) above which a neuron counts as dead.
DEAD_THRESHOLD = 0.9
#: Layers with more rows than this are subsampled (stated) for PCA, clusters, probe and CKA.
MAX_ROWS = 50_000
#: ... and so are layers whose matrix has more cells than this.
MAX_CELLS = 50_000 * 4_096


@dataclass(frozen=True)
class CompareSettings:
    """The analysis parameters, one default each (the CLI reuses them)."""

    metrics: tuple[str, ...] = DEFAULT_METRICS
    center: bool = True
    dormant_tau: float = 0.0
    #: Metric definitions, as the results file's provenance records them.
    definitions: str = "ndt"
    dead_threshold: float = DEAD_THRESHOLD
    top_k: int = 10
    n_components: int = 10
    n_clusters: int = 5
    seed: int = 0
    max_rows: int = MAX_ROWS
    max_cells: int = MAX_CELLS
