"""Activation tensors -> float64 row matrices for the before/after analyses, and the size rule.

Reshaping follows `ndt.core.spectrum.as_matrix` (the one place for it): (B, D) stays, (B, T, D)
becomes B*T token rows, (B, C, H, W) becomes B rows of C*H*W features. Per-sample labels are
repeated for each row a sample contributes. A layer with more rows than the analyses can hold
is subsampled to a seeded, stated set of rows, the same rows before and after.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from ndt.analysis.compare_settings import MAX_CELLS, MAX_ROWS
from ndt.core.spectrum import as_matrix

ActivationLike = torch.Tensor | np.ndarray


@dataclass(frozen=True)
class Subsample:
    """Which rows a layer's analyses used when the layer was too large for all of them.

    Attributes:
        n_rows_total: Rows of the full activation matrix.
        n_rows_used: Rows drawn without replacement (the same ones before and after).
        seed: Seed of the numpy generator that drew them.
    """

    n_rows_total: int
    n_rows_used: int
    seed: int


def to_matrix(activation: ActivationLike, *, token_axis: bool = True) -> NDArray[np.float64]:
    """A layer output (B, ...) as a float64 (n_rows, n_features) matrix, via `as_matrix`."""
    if isinstance(activation, np.ndarray):
        activation = np.ascontiguousarray(activation)
    tensor = torch.as_tensor(activation).detach().cpu()
    return as_matrix(tensor, token_axis=token_axis).to(torch.float64).numpy()


def stack_steps(
    activations_by_step: Mapping[int, Mapping[str, ActivationLike]], layer: str
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """One layer's rows of every step stacked in step order, and the step of each row."""
    steps = sorted(activations_by_step)
    mats = [to_matrix(activations_by_step[s][layer]) for s in steps]
    labels = [np.full(len(m), s, dtype=np.int64) for s, m in zip(steps, mats, strict=True)]
    return np.vstack(mats), np.concatenate(labels)


def repeat_labels(labels: ActivationLike | None, n_rows: int) -> NDArray | None:
    """Per-sample labels (B,) repeated for each of the n_rows / B rows a sample gives."""
    if labels is None:
        return None
    values = np.asarray(torch.as_tensor(labels).cpu().numpy()).reshape(-1)
    if values.size == 0 or n_rows % values.size:
        raise ValueError(f"{values.size} labels do not divide {n_rows} activation rows")
    return np.repeat(values, n_rows // values.size)


def subsample_rows(
    n_rows: int,
    n_features: int,
    *,
    max_rows: int = MAX_ROWS,
    max_cells: int = MAX_CELLS,
    seed: int = 0,
) -> tuple[NDArray[np.int64] | None, Subsample | None]:
    """Rows to keep when n_rows > max_rows or n_rows * n_features > max_cells.

    Returns:
        (sorted row indices, Subsample record), or (None, None) when every row fits.
    """
    limit = min(max_rows, max(2, max_cells // max(1, n_features)))
    if n_rows <= limit:
        return None, None
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(n_rows, size=limit, replace=False)).astype(np.int64)
    return keep, Subsample(n_rows_total=n_rows, n_rows_used=limit, seed=seed)


def few_threads(n_cells: int) -> AbstractContextManager:
    """One BLAS/OpenMP thread for small problems: on matrices of a few thousand cells the
    iterative solvers (L-BFGS, KMeans) spend more time synchronising threads than computing,
    by a factor of 20 measured on a 2-core machine."""
    if n_cells >= 1 << 20:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)
