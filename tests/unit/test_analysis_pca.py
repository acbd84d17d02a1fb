import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

from ndt.analysis.pca import analyze_activation_phases, compare_pca, fit_pca


@pytest.mark.parametrize("shape", [(200, 12), (15, 40)])
def test_explained_variance_ratio_matches_sklearn(shape):
    x = np.random.default_rng(0).normal(size=shape) * np.linspace(1, 5, shape[1])
    k = 5
    ours = fit_pca(x, k)
    ref = PCA(n_components=k, svd_solver="full").fit(x)
    np.testing.assert_allclose(
        ours.explained_variance_ratio, ref.explained_variance_ratio_, rtol=1e-8
    )
    np.testing.assert_allclose(ours.explained_variance, ref.explained_variance_, rtol=1e-8)
    np.testing.assert_allclose(np.abs(ours.components @ ref.components_.T), np.eye(k), atol=1e-6)


def test_principal_angles_match_scipy_and_detect_rotation():
    rng = np.random.default_rng(1)
    scale = np.array([10, 8, 6, 1, 1, 1, 1, 1.0])
    a = rng.normal(size=(500, 8)) * scale
    same = compare_pca(a, a + 0.01 * rng.normal(size=a.shape), n_components=3)
    assert same.principal_angles.max() < 2
    assert same.subspace_overlap > 0.99
    rotated = a[:, ::-1]  # the strong directions move to other neurons
    moved = compare_pca(a, rotated, n_components=3)
    assert moved.principal_angles.min() > 80
    ref = np.degrees(subspace_angles(fit_pca(a, 3).components.T, fit_pca(rotated, 3).components.T))
    np.testing.assert_allclose(np.sort(moved.principal_angles), np.sort(ref), atol=1e-6)


def test_centroid_shift_along_joint_component():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(300, 4))
    b = a + np.array([6.0, 0, 0, 0])
    result = compare_pca(a, b, n_components=2)
    # The shift dominates the joint variance, so the first joint component is the shift axis.
    joint_std = np.sqrt(np.var(np.vstack([a, b])[:, 0], ddof=1))
    assert abs(result.centroid_shift[0]) == pytest.approx(6.0 / joint_std, rel=0.05)
    assert result.centroid_distance == pytest.approx(6.0 / np.sqrt(4), rel=0.1)
    assert result.joint_projection.shape == (600, 2)


def test_phases_on_conv_activations():
    acts = {
        s: {"conv": torch.randn(20, 2, 3, 3, generator=torch.Generator().manual_seed(s))}
        for s in (10, 20)
    }
    out = analyze_activation_phases(acts, n_components=4)["conv"]
    assert out.transformed.shape == (40, 4)
    assert list(np.unique(out.step_indices)) == [10, 20]
    ref = PCA(4).fit(np.vstack([acts[s]["conv"].reshape(20, -1).numpy() for s in (10, 20)]))
    np.testing.assert_allclose(out.explained_variance, ref.explained_variance_ratio_, rtol=1e-5)
