"""Per-neuron statistics before and after (reference §3.3): mean, std, sparsity, dead units."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ndt.analysis.compare_settings import DEAD_THRESHOLD
from ndt.analysis.matrices import ActivationLike, to_matrix

#: The keys of reference §3.3's per-layer dicts, all readable from `NeuronStatistics`.
REFERENCE_KEYS = (
    "mean_before", "mean_after", "mean_change", "std_before", "std_after", "sparsity_before",
    "sparsity_after", "became_dead", "became_alive", "n_dead_before", "n_dead_after",
    "n_became_dead", "n_became_alive",
)  # fmt: skip


@dataclass(frozen=True)
class NeuronChange:
    """One neuron among the largest changes of mean activation."""

    index: int
    mean_before: float
    mean_after: float
    delta_mean: float
    sparsity_before: float
    sparsity_after: float


@dataclass(frozen=True)
class NeuronStatistics:
    """Per-neuron statistics of one layer, each array of shape (n_features,).

    A neuron is a column of the layer's activation matrix (see `ndt.analysis.matrices`); its
    sparsity is the fraction of rows where it is exactly zero, and it is dead when its
    sparsity exceeds `dead_threshold`.
    """

    mean_before: NDArray[np.float64]
    mean_after: NDArray[np.float64]
    std_before: NDArray[np.float64]
    std_after: NDArray[np.float64]
    sparsity_before: NDArray[np.float64]
    sparsity_after: NDArray[np.float64]
    dead_threshold: float
    top_changes: tuple[NeuronChange, ...]

    @property
    def mean_change(self) -> NDArray[np.float64]:
        return np.abs(self.mean_after - self.mean_before)

    @property
    def dead_before(self) -> NDArray[np.bool_]:
        return self.sparsity_before > self.dead_threshold

    @property
    def dead_after(self) -> NDArray[np.bool_]:
        return self.sparsity_after > self.dead_threshold

    @property
    def became_dead(self) -> NDArray[np.bool_]:
        return ~self.dead_before & self.dead_after

    @property
    def became_alive(self) -> NDArray[np.bool_]:
        return self.dead_before & ~self.dead_after

    def keys(self) -> tuple[str, ...]:
        """The reference document's keys (§3.3), readable as ``stats[key]``."""
        return REFERENCE_KEYS

    def __getitem__(self, key: str) -> object:
        """``stats['n_became_dead']`` and the other keys of reference §3.3's dicts."""
        if key not in REFERENCE_KEYS:
            raise KeyError(f"{key!r}; the keys are {', '.join(REFERENCE_KEYS)}")
        counts = self.counts()
        return counts[key] if key in counts else getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in REFERENCE_KEYS

    def counts(self) -> dict[str, int]:
        """n_neurons, n_dead_before, n_dead_after, n_became_dead, n_became_alive."""
        return {
            "n_neurons": int(self.mean_before.size),
            "n_dead_before": int(self.dead_before.sum()),
            "n_dead_after": int(self.dead_after.sum()),
            "n_became_dead": int(self.became_dead.sum()),
            "n_became_alive": int(self.became_alive.sum()),
        }


def neuron_statistics(
    before: ActivationLike,
    after: ActivationLike,
    *,
    dead_threshold: float = DEAD_THRESHOLD,
    top_k: int = 10,
    token_axis: bool = True,
) -> NeuronStatistics:
    """Compare one layer's neurons between two checkpoints on the same probe.

    Args:
        before: The layer's output at the earlier checkpoint, (B, ...).
        after: Its output at the later checkpoint, same shape.
        dead_threshold: Sparsity above which a neuron counts as dead.
        top_k: How many neurons with the largest |delta mean| to list.
        token_axis: See `ndt.core.spectrum.as_matrix`.
    """
    if not 0 <= dead_threshold <= 1:
        raise ValueError(f"dead_threshold must lie in [0, 1], got {dead_threshold}")
    a, b = to_matrix(before, token_axis=token_axis), to_matrix(after, token_axis=token_axis)
    if a.shape != b.shape:
        raise ValueError(f"before has shape {a.shape} but after has {b.shape}")
    mean_a, mean_b = a.mean(0), b.mean(0)
    sparse_a, sparse_b = (a == 0).mean(0), (b == 0).mean(0)
    delta = mean_b - mean_a
    order = np.argsort(-np.abs(delta), kind="stable")[: max(0, top_k)]
    top = tuple(
        NeuronChange(
            int(i),
            float(mean_a[i]),
            float(mean_b[i]),
            float(delta[i]),
            float(sparse_a[i]),
            float(sparse_b[i]),
        )
        for i in order
    )
    return NeuronStatistics(
        mean_a, mean_b, a.std(0), b.std(0), sparse_a, sparse_b, dead_threshold, top
    )


def compute_neuron_statistics(
    activations_before: Mapping[str, ActivationLike],
    activations_after: Mapping[str, ActivationLike],
    *,
    dead_threshold: float = DEAD_THRESHOLD,
    top_k: int = 10,
) -> dict[str, NeuronStatistics]:
    """`neuron_statistics` for every layer of `activations_before`, as the reference names it."""
    return {
        name: neuron_statistics(
            activations_before[name],
            activations_after[name],
            dead_threshold=dead_threshold,
            top_k=top_k,
        )
        for name in activations_before
    }
