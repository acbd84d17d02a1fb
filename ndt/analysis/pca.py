"""PCA before and after (reference §3.1): explained variance, joint-PCA centroid shift, and the
principal angles between the two top-k principal subspaces (Björck & Golub 1973)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ndt.analysis.matrices import ActivationLike, stack_steps, to_matrix


@dataclass(frozen=True)
class PrincipalComponents:
    """A fitted PCA, float64, components ordered by decreasing variance.

    Attributes:
        mean: Column means, shape (n_features,).
        components: Unit-norm directions, shape (k, n_features); each one's largest entry
            is positive, so signs are deterministic.
        explained_variance: Variance along each direction (ddof=1), shape (k,).
        explained_variance_ratio: That variance over the total variance, shape (k,).
    """

    mean: NDArray[np.float64]
    components: NDArray[np.float64]
    explained_variance: NDArray[np.float64]
    explained_variance_ratio: NDArray[np.float64]

    def transform(self, matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        return (matrix - self.mean) @ self.components.T


def fit_pca(activation: ActivationLike, n_components: int = 10) -> PrincipalComponents:
    """PCA of a layer's activation matrix, by scikit-learn (full SVD, float64).

    Args:
        activation: (B, ...) output or (n_rows, n_features) matrix, reshaped by `to_matrix`.
        n_components: k; capped at min(n_rows, n_features).
    """
    from sklearn.decomposition import PCA

    x = to_matrix(activation)
    n, d = x.shape
    if n < 2:
        raise ValueError("PCA needs at least two rows")
    k = max(1, min(n_components, n, d))
    pca = PCA(n_components=k, svd_solver="full").fit(x)
    components = pca.components_.astype(np.float64, copy=True)
    # A deterministic sign: each direction's largest entry is positive.
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(1)])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    ratio = pca.explained_variance_ratio_.astype(np.float64)
    if not np.isfinite(ratio).all():  # no variance at all: the ratio is undefined
        ratio = np.full(k, np.nan)
    return PrincipalComponents(x.mean(0), components, pca.explained_variance_, ratio)


def principal_angles(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Principal angles in degrees, ascending, between the row spaces of `a` (k, d) and
    `b` (k, d), by scipy's `subspace_angles` (accurate for small angles, unlike arccos of
    the singular values)."""
    from scipy.linalg import subspace_angles

    return np.degrees(subspace_angles(a.T, b.T))[::-1].copy()


@dataclass(frozen=True)
class PCAComparison:
    """How a layer's principal structure changed between two checkpoints.

    Attributes:
        n_components: k, the number of leading components compared.
        explained_variance_ratio_before: First k ratios at the earlier checkpoint, (k,).
        explained_variance_ratio_after: First k ratios at the later one, (k,).
        joint_explained_variance_ratio: Ratios of a PCA fitted on both clouds stacked, (k,).
        centroid_shift: (mean after - mean before) along each joint component, in units of
            that component's standard deviation, (k,).
        centroid_distance: |mean after - mean before| over the root of the mean per-row
            total variance of the two clouds (0: same centre; 1: one typical spread).
        principal_angles: Angles in degrees between the before and after top-k subspaces,
            ascending, (k,); 0 means a shared direction, 90 an orthogonal one.
        subspace_overlap: Mean squared cosine of those angles, in [0, 1].
        joint_projection: Every row of both clouds on the first two joint components,
            before rows first, shape (2 * n_rows, 2); for the scatter figure.
    """

    n_components: int
    explained_variance_ratio_before: NDArray[np.float64]
    explained_variance_ratio_after: NDArray[np.float64]
    joint_explained_variance_ratio: NDArray[np.float64]
    centroid_shift: NDArray[np.float64]
    centroid_distance: float
    principal_angles: NDArray[np.float64]
    subspace_overlap: float
    joint_projection: NDArray[np.float64]


def compare_pca(
    before: ActivationLike, after: ActivationLike, *, n_components: int = 10
) -> PCAComparison:
    """Fit PCA before, after and on both together, and compare them (see PCAComparison)."""
    a, b = to_matrix(before), to_matrix(after)
    if a.shape != b.shape:
        raise ValueError(f"before has shape {a.shape} but after has {b.shape}")
    pca_a, pca_b = fit_pca(a, n_components), fit_pca(b, n_components)
    joint_rows = np.vstack([a, b])
    joint = fit_pca(joint_rows, n_components)
    shift = b.mean(0) - a.mean(0)
    spread = np.sqrt(np.maximum(joint.explained_variance, 0))
    along = joint.components @ shift
    centroid_shift = np.where(spread > 0, along / np.where(spread > 0, spread, 1), np.nan)
    within = (a.var(0, ddof=1).sum() + b.var(0, ddof=1).sum()) / 2
    distance = float(np.linalg.norm(shift) / np.sqrt(within)) if within > 0 else float("nan")
    k = min(len(pca_a.components), len(pca_b.components))
    angles = principal_angles(pca_a.components[:k], pca_b.components[:k])
    projection = joint.transform(joint_rows)[:, :2]
    if projection.shape[1] < 2:
        projection = np.hstack([projection, np.zeros((len(projection), 1))])
    return PCAComparison(
        n_components=k,
        explained_variance_ratio_before=pca_a.explained_variance_ratio,
        explained_variance_ratio_after=pca_b.explained_variance_ratio,
        joint_explained_variance_ratio=joint.explained_variance_ratio,
        centroid_shift=centroid_shift,
        centroid_distance=distance,
        principal_angles=angles,
        subspace_overlap=float(np.mean(np.cos(np.radians(angles)) ** 2)),
        joint_projection=projection,
    )


@dataclass(frozen=True)
class PhasePCA:
    """A joint PCA over several checkpoints of one layer (reference `analyze_activation_phases`).

    Attributes:
        explained_variance: Explained-variance ratios of the joint PCA, (k,).
        transformed: Every row projected on the k components, (n_steps * n_rows, k).
        step_indices: The step each row of `transformed` came from.
        pca: The fitted components.
    """

    explained_variance: NDArray[np.float64]
    transformed: NDArray[np.float64]
    step_indices: NDArray[np.int64]
    pca: PrincipalComponents


def analyze_activation_phases(
    activations_by_step: Mapping[int, Mapping[str, ActivationLike]], n_components: int = 10
) -> dict[str, PhasePCA]:
    """Joint PCA of each layer over all the given steps (step -> layer -> activation)."""
    steps = sorted(activations_by_step)
    if not steps:
        return {}
    results = {}
    for layer in activations_by_step[steps[0]]:
        rows, indices = stack_steps(activations_by_step, layer)
        pca = fit_pca(rows, n_components)
        results[layer] = PhasePCA(pca.explained_variance_ratio, pca.transform(rows), indices, pca)
    return results
