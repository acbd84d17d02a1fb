"""Metrics against known answers and an independent float64 SVD reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from float64_reference import reference_metrics

from ndt.core import estimators
from ndt.core.estimators import METRICS, as_spectrum, compute_metrics
from ndt.core.spectrum import Spectrum, compute_spectrum


def every_metric(matrix, **kwargs):
    return compute_metrics(as_spectrum(matrix, **kwargs))


def spectrum_of(eigenvalues: list[float]) -> Spectrum:
    values = np.sort(np.asarray(eigenvalues, dtype=np.float64))[::-1]
    return Spectrum(values, np.ones(4), n_samples=100, n_features=len(values))


def test_flat_spectrum_known_answers():
    values = compute_metrics(spectrum_of([2.0] * 10))
    assert values["stable_rank"] == pytest.approx(10)
    assert values["participation_ratio"] == pytest.approx(10)
    assert values["nuclear_norm_ratio"] == pytest.approx(10)
    assert values["effective_rank"] == pytest.approx(10)
    assert values["cumulative_energy_90"] == 9


def test_rank_one_known_answers():
    values = compute_metrics(spectrum_of([5.0, 0, 0, 0]))
    for name in ("stable_rank", "participation_ratio", "nuclear_norm_ratio", "effective_rank"):
        assert values[name] == pytest.approx(1)
    assert values["cumulative_energy_90"] == 1


def test_two_level_spectrum():
    # lambda = (4, 1): stable rank 5/4, PR 25/17, sigma = (2, 1): nuclear ratio 3/2.
    values = compute_metrics(spectrum_of([4.0, 1.0]))
    assert values["stable_rank"] == pytest.approx(1.25)
    assert values["participation_ratio"] == pytest.approx(25 / 17)
    assert values["nuclear_norm_ratio"] == pytest.approx(1.5)
    p = np.array([2 / 3, 1 / 3])
    assert values["effective_rank"] == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    assert values["cumulative_energy_90"] == 2


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("shape", [(400, 30), (25, 80), (64, 64)])
def test_matches_float64_svd_reference(center, shape):
    rng = np.random.default_rng(0)
    n, d = shape
    # Decaying spectrum, a shared offset and a few exactly-zero (dormant) columns.
    matrix = rng.normal(size=(n, d)) @ np.diag(np.geomspace(10, 0.01, d)) + 3.0
    matrix[:, :3] = 0.0
    got = every_metric(matrix, center=center)
    want = reference_metrics(matrix, center=center)
    for name in METRICS:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, err_msg=name)
    assert got["dormant_fraction"] == pytest.approx(3 / d)


def test_low_rank_matrix_ignores_round_off():
    rng = np.random.default_rng(1)
    matrix = rng.normal(size=(500, 5)) @ rng.normal(size=(5, 200))
    got = every_metric(matrix)
    want = reference_metrics(matrix)
    for name in METRICS:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, err_msg=name)
    assert got["cumulative_energy_90"] <= 5


@pytest.mark.parametrize("name", [n for n in METRICS if n != "dormant_fraction"])
def test_scale_and_rotation_invariance(name):
    rng = np.random.default_rng(2)
    matrix = rng.normal(size=(300, 20)) * np.linspace(1, 5, 20)
    rotation, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    base = every_metric(matrix)[name]
    assert every_metric(7.5 * matrix)[name] == pytest.approx(base, rel=1e-9)
    assert every_metric(matrix @ rotation)[name] == pytest.approx(base, rel=1e-6)


def test_dormant_fraction_threshold():
    matrix = np.ones((10, 4)) * np.array([0.0, 0.05, 1.0, 2.95])  # layer mean |a| = 1
    spectrum = compute_spectrum(matrix)
    assert compute_metrics(spectrum, ["dormant_fraction"])["dormant_fraction"] == 0.25
    tau = compute_metrics(spectrum, ["dormant_fraction"], dormant_tau=0.1)
    assert tau["dormant_fraction"] == 0.5


def test_degenerate_and_non_finite_give_nan():
    zeros = every_metric(np.zeros((10, 4)))
    assert np.isnan(zeros["stable_rank"]) and zeros["dormant_fraction"] == 1.0
    broken = np.ones((10, 4))
    broken[0, 0] = np.nan
    assert all(np.isnan(v) for v in compute_metrics(compute_spectrum(broken)).values())


def test_public_functions_accept_tensors_and_spectra():
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(50, 6))
    spectrum = compute_spectrum(matrix)
    for name in ("stable_rank", "participation_ratio", "cumulative_energy_90",
                 "nuclear_norm_ratio", "effective_rank"):  # fmt: skip
        function = getattr(estimators, name)
        from_tensor = function(torch.tensor(matrix, dtype=torch.float64))
        assert from_tensor == pytest.approx(function(spectrum))
        assert from_tensor == pytest.approx(compute_metrics(spectrum, [name])[name])


def test_unknown_metric_is_named():
    with pytest.raises(ValueError, match="unknown metric rankiness"):
        compute_metrics(spectrum_of([1.0]), ["rankiness"])


def test_ndtracker_definitions_match_numpy_svd():
    """Uncentred singular values; participation ratio (sum s)^2 / sum s^2 (numpy's SVD)."""
    rng = np.random.default_rng(4)
    matrix = rng.normal(size=(60, 12)) * np.linspace(1, 4, 12) + 2.0
    s = np.linalg.svd(matrix, compute_uv=False)
    got = estimators.compute_all_metrics(matrix, definitions="ndtracker")
    assert got.stable_rank == pytest.approx((s**2).sum() / s[0] ** 2, rel=1e-10)
    assert got.participation_ratio == pytest.approx(s.sum() ** 2 / (s**2).sum(), rel=1e-10)
    assert got.nuclear_norm_ratio == pytest.approx(s.sum() / s[0], rel=1e-10)
    k = int(np.searchsorted(np.cumsum(s**2), 0.9 * (s**2).sum()) + 1)
    assert got.cumulative_energy_90 == k and isinstance(got.cumulative_energy_90, int)
    # ndt's default centres: the offset of 2.0 no longer dominates the top direction.
    centred = np.linalg.svd(matrix - matrix.mean(0), compute_uv=False)
    assert estimators.stable_rank(matrix) == pytest.approx(
        (centred**2).sum() / centred[0] ** 2, rel=1e-10
    )


def test_compute_all_metrics_unpacks_as_four():
    matrix = np.random.default_rng(5).normal(size=(40, 8))
    sr, pr, ce90, nnr = estimators.compute_all_metrics(matrix)
    want = every_metric(matrix)
    assert (sr, pr, nnr) == pytest.approx(
        (want["stable_rank"], want["participation_ratio"], want["nuclear_norm_ratio"])
    )
    assert ce90 == want["cumulative_energy_90"]


def test_cumulative_energy_threshold():
    spectrum = spectrum_of([4.0, 3.0, 2.0, 1.0])  # energy 0.4, 0.7, 0.9, 1.0
    assert estimators.cumulative_energy_90(spectrum, threshold=0.5) == 2
    assert estimators.cumulative_energy_90(spectrum, threshold=0.9) == 3
    with pytest.raises(ValueError, match=r"Threshold must be in \(0, 1\], got 1.5"):
        estimators.cumulative_energy_90(spectrum, threshold=1.5)


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (torch.zeros(0, 5), "non-empty"),
        (torch.zeros(5, 0), "non-empty"),
        (torch.zeros(3, 4, 5), "Expected 2D matrix, got 3D"),
        (torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), "NaN or Inf"),
        (torch.tensor([[1.0, float("inf")], [0.0, 1.0]]), "NaN or Inf"),
    ],
)
def test_bad_matrices_raise_value_error(matrix, message):
    for function in (estimators.stable_rank, estimators.participation_ratio,
                     estimators.compute_all_metrics):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            function(matrix)


def test_unknown_definitions_are_named():
    with pytest.raises(ValueError, match="unknown definitions 'sklearn'"):
        estimators.stable_rank(np.ones((3, 2)), definitions="sklearn")
