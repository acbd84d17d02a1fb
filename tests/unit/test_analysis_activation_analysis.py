"""ActivationAnalyzer against numpy / scikit-learn computed here, and FeatureVisualizer's
pointer to Captum."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA

from ndt.analysis import ActivationAnalyzer, FeatureVisualizer


def test_singular_values_and_ndtracker_summaries_match_numpy():
    data = np.random.default_rng(0).normal(size=(30, 6)) + 1.0
    s = np.linalg.svd(data, compute_uv=False)
    res = ActivationAnalyzer().singular_value_analysis(data)
    np.testing.assert_allclose(res["singular_values"], s, rtol=1e-10)
    assert res["stable_rank"] == pytest.approx((s**2).sum() / s[0] ** 2)
    assert res["participation_ratio"] == pytest.approx(s.sum() ** 2 / (s**2).sum())
    p = s / s.sum()
    assert res["spectral_entropy"] == pytest.approx(-(p * np.log(p)).sum())
    assert res["condition_number"] == pytest.approx(s[0] / s[-1])


def test_pca_counts_match_sklearn():
    data = np.random.default_rng(1).normal(size=(50, 8)) * np.geomspace(5, 0.1, 8)
    res = ActivationAnalyzer().pca_analysis(data)
    cumulative = np.cumsum(PCA().fit(data).explained_variance_ratio_)
    assert res["n_components_90"] == int(np.argmax(cumulative >= 0.9) + 1)
    np.testing.assert_allclose(res["cumulative_variance"], cumulative)


def test_compare_same_subspace_and_neuron_scores():
    rng = np.random.default_rng(2)
    data = rng.normal(size=(40, 5))
    analyzer = ActivationAnalyzer()
    rotated_rows = data[rng.permutation(40)]  # same rows, other order: same subspace
    res = analyzer.compare_activations(data, rotated_rows)
    assert res["subspace_overlap"] == pytest.approx(1.0, abs=1e-9)
    acts = np.array([[0.0, 2.0, -1.0], [0.0, 0.0, 1.0]])
    scores = analyzer.neuron_importance(acts, method="mean_abs")
    np.testing.assert_allclose(scores["scores"], [0.0, 1.0, 1.0])
    assert scores["dead_neurons"].tolist() == [0]
    with pytest.raises(ValueError, match="Unknown clustering method"):
        analyzer.cluster_analysis(acts, method="spectral")


def test_feature_visualizer_points_to_captum():
    with pytest.raises(ImportError, match="Captum"):
        FeatureVisualizer(object())
