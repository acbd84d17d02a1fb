"""PCA before and after (reference §3.1): explained variance, joint-PCA centroid shift, and the
principal angles between the two top-k principal subspaces (Björck & Golub 1973)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ndt.analysis.rows import ActivationLike, stack_steps, to_matrix


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
    """PCA of a layer's activation matrix through an eigendecomposition of its smaller Gram.

    Args:
        activation: (B, ...) output or (n_rows, n_features) matrix, reshaped by `to_matrix`.
        n_components: k; capped at min(n_rows, n_features).
    """
    x = to_matrix(activation)
    n, d = x.shape
    if n < 2:
        raise ValueError("PCA needs at least two rows")
    k = max(1, min(n_components, n, d))
    mean = x.mean(0)
    xc = x - mean
    if d <= n:
        values, vectors = np.linalg.eigh(xc.T @ xc)
        values, vectors = values[::-1][:k], vectors[:, ::-1][:, :k]
    else:
        values, left = np.linalg.eigh(xc @ xc.T)
        values, left = values[::-1][:k], left[:, ::-1][:, :k]
        sigma = np.sqrt(np.clip(values, 0, None))
        vectors = (xc.T @ left) / np.where(sigma > 0, sigma, 1.0)
    values = np.clip(values, 0, None)
    total = float(np.square(xc).sum())
    components = vectors.T.copy()
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(1)])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    ratio = values / total if total > 0 else np.full(k, np.nan)
    return PrincipalComponents(mean, components, values / (n - 1), ratio)


def principal_angles(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Principal angles in degrees, ascending, between the row spaces of `a` (k, d) and
    `b` (k, d), each with orthonormal rows."""
    cosines = np.linalg.svd(a @ b.T, compute_uv=False)
    return np.degrees(np.arccos(np.clip(cosines, 0.0, 1.0)))


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
