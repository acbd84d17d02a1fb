import numpy as np
import pytest
import torch

from ndt.analysis.pca import analyze_activation_phases, compare_pca, fit_pca, principal_angles


@pytest.mark.parametrize("shape", [(200, 12), (15, 40)])
def test_explained_variance_matches_the_covariance_eigenvalues(shape):
    """Reference: numpy's float64 eigendecomposition of the sample covariance (ddof=1)."""
    x = np.random.default_rng(0).normal(size=shape) * np.linspace(1, 5, shape[1])
    k = 5
    ours = fit_pca(x, k)
    values, vectors = np.linalg.eigh(np.cov(x, rowvar=False))
    values, vectors = values[::-1], vectors[:, ::-1]
    np.testing.assert_allclose(ours.explained_variance, values[:k], rtol=1e-8)
    np.testing.assert_allclose(ours.explained_variance_ratio, values[:k] / values.sum(), rtol=1e-8)
    np.testing.assert_allclose(np.abs(ours.components @ vectors[:, :k]), np.eye(k), atol=1e-6)
    # Deterministic signs: each direction's largest entry is positive.
    assert np.all(ours.components[np.arange(k), np.abs(ours.components).argmax(1)] > 0)


@pytest.mark.parametrize("theta", [1e-7, 0.3, 0.7])
def test_principal_angles_of_a_known_rotation(theta):
    """Planes spanned by (e1, e2) and (cos t e1 + sin t e3, cos 2t e2 + sin 2t e4): angles t, 2t.

    arccos of the singular values loses small angles (cos 1e-7 rounds to 1): they must not.
    """
    e = np.eye(6)
    a = e[:2]
    b = np.stack(
        [
            np.cos(theta) * e[0] + np.sin(theta) * e[2],
            np.cos(2 * theta) * e[1] + np.sin(2 * theta) * e[3],
        ]
    )
    np.testing.assert_allclose(principal_angles(a, b), np.degrees([theta, 2 * theta]), rtol=1e-6)


def test_rotation_of_the_strong_directions_is_seen():
    rng = np.random.default_rng(1)
    scale = np.array([10, 8, 6, 1, 1, 1, 1, 1.0])
    a = rng.normal(size=(500, 8)) * scale
    same = compare_pca(a, a + 0.01 * rng.normal(size=a.shape), n_components=3)
    assert same.principal_angles.max() < 2
    assert same.subspace_overlap > 0.99
    rotated = a[:, ::-1]  # the strong directions move to other neurons
    moved = compare_pca(a, rotated, n_components=3)
    assert moved.principal_angles.min() > 80


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
    rows = np.vstack([acts[s]["conv"].reshape(20, -1).numpy() for s in (10, 20)]).astype(float)
    values = np.linalg.eigvalsh(np.cov(rows, rowvar=False))[::-1]
    np.testing.assert_allclose(out.explained_variance, values[:4] / values.sum(), rtol=1e-5)
