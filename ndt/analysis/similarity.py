"""Linear centred kernel alignment (CKA) between two activation matrices of the same rows
(Kornblith et al. 2019, "Similarity of Neural Network Representations Revisited")."""

from __future__ import annotations

import numpy as np

from ndt.analysis.matrices import ActivationLike, to_matrix


def linear_cka(x: ActivationLike, y: ActivationLike) -> float:
    """Linear CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on column-centred X and Y.

    It is 1 for identical representations and invariant to orthogonal transforms and
    isotropic scaling of either side. Computed in float64 through whichever of the feature
    or sample Gram matrices is smaller.

    Args:
        x: (n_rows, d1) matrix or (B, ...) activation; rows must pair with those of `y`.
        y: (n_rows, d2) matrix or activation.

    Returns:
        A value in [0, 1], or NaN when either side has no variance.
    """
    a, b = to_matrix(x), to_matrix(y)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"x has {a.shape[0]} rows but y has {b.shape[0]}")
    a = a - a.mean(0)
    b = b - b.mean(0)
    n, d1, d2 = a.shape[0], a.shape[1], b.shape[1]
    if d1 * d2 + d1 * d1 + d2 * d2 <= 3 * n * n:
        cross = np.square(b.T @ a).sum()
        norm_a, norm_b = np.linalg.norm(a.T @ a), np.linalg.norm(b.T @ b)
    else:
        gram_a, gram_b = a @ a.T, b @ b.T
        cross = float((gram_a * gram_b).sum())
        norm_a, norm_b = np.linalg.norm(gram_a), np.linalg.norm(gram_b)
    if norm_a == 0 or norm_b == 0:
        return float("nan")
    return float(cross / (norm_a * norm_b))
