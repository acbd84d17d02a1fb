import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from ndt.analysis.similarity import linear_cka


def _reference_cka(x, y):
    # Gram-matrix form of Kornblith et al. (2019), eq. for linear HSIC, written independently.
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    k, ell = h @ x @ x.T @ h, h @ y @ y.T @ h
    return np.trace(k @ ell) / np.sqrt(np.trace(k @ k) * np.trace(ell @ ell))


def test_cka_of_itself_is_one():
    x = np.random.default_rng(0).normal(size=(50, 8))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("shape", [(40, 6, 5), (30, 120)])
def test_cka_matches_reference_both_branches(shape):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(shape[0], shape[-1]))
    y = x @ rng.normal(size=(shape[-1], shape[-1])) + rng.normal(size=x.shape)
    np.testing.assert_allclose(linear_cka(x, y), _reference_cka(x, y), rtol=1e-10)


def test_cka_invariant_to_rotation_and_isotropic_scale():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(60, 10)), rng.normal(size=(60, 7))
    q = ortho_group.rvs(10, random_state=3)
    base = linear_cka(x, y)
    np.testing.assert_allclose(linear_cka(3.5 * x @ q + 2.0, y), base, rtol=1e-10)


def test_cka_accepts_tokens_and_tensors():
    x = torch.randn(5, 4, 3, generator=torch.Generator().manual_seed(0))
    assert linear_cka(x, x.numpy().reshape(20, 3)) == pytest.approx(1.0)


def test_cka_nan_without_variance():
    assert np.isnan(linear_cka(np.ones((10, 3)), np.random.default_rng(0).normal(size=(10, 3))))
