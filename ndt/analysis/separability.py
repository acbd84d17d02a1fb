"""How linearly separable the probe's classes are in a layer: cross-validated accuracy of a
standardized logistic-regression probe (Alain & Bengio 2016, "linear classifier probes")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ndt.analysis.matrices import ActivationLike, few_threads, to_matrix


@dataclass(frozen=True)
class ProbeAccuracy:
    """Cross-validated linear-probe accuracy.

    Attributes:
        mean: Mean accuracy over the folds (NaN when it could not be measured).
        std: Standard deviation over the folds.
        n_splits: Folds used (stratified, shuffled with `seed`).
        chance: Accuracy of always predicting the most frequent class.
    """

    mean: float
    std: float
    n_splits: int
    chance: float


def probe_accuracy(
    activation: ActivationLike,
    labels: np.ndarray,
    *,
    n_splits: int = 5,
    seed: int = 0,
    max_iter: int = 1000,
) -> ProbeAccuracy:
    """Stratified k-fold accuracy of StandardScaler + LogisticRegression on the rows.

    Args:
        activation: (n_rows, n_features) matrix or (B, ...) activation.
        labels: One class per row, shape (n_rows,).
        n_splits: Folds; lowered to the size of the smallest class (at least 2).
        seed: Shuffles the folds.
        max_iter: Solver iterations of each logistic regression.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = to_matrix(activation)
    y = np.asarray(labels).reshape(-1)
    if len(y) != len(x):
        raise ValueError(f"{len(y)} labels for {len(x)} rows")
    _, counts = np.unique(y, return_counts=True)
    chance = float(counts.max() / counts.sum()) if counts.size else float("nan")
    folds = min(n_splits, int(counts.min()) if counts.size else 0)
    if counts.size < 2 or folds < 2:
        return ProbeAccuracy(float("nan"), float("nan"), 0, chance)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with few_threads(x.size):
        scores = cross_val_score(model, x, y, cv=splitter)
    return ProbeAccuracy(float(scores.mean()), float(scores.std()), folds, chance)
