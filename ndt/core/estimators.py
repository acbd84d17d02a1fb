"""Dimensionality metrics: each one a pure function of a layer's `Spectrum`, listed in METRICS.

The public functions (`stable_rank`, ...) also accept an activation tensor or array, as the
reference API does; it is turned into a spectrum first (centred by default, like
``ndt track``). With lambda_i the eigenvalues of A^T A and sigma_i = sqrt(lambda_i):

- stable_rank          = sum(lambda) / max(lambda)
- participation_ratio  = sum(lambda)**2 / sum(lambda**2)
- cumulative_energy_90 = smallest k with lambda_1 + ... + lambda_k >= 0.9 sum(lambda)
- nuclear_norm_ratio   = sum(sigma) / max(sigma)
- effective_rank       = exp(-sum p_i log p_i), p_i = sigma_i / sum(sigma)
- dormant_fraction     = share of units whose mean |a| over the layer's mean is <= tau

A degenerate spectrum (all zero) gives NaN for the ratios; see docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from ndt.core.spectrum import Spectrum, compute_spectrum

SpectrumLike = Spectrum | torch.Tensor | np.ndarray

# Absorbs round-off when sum(lambda[:k]) equals 0.9 * sum(lambda) exactly (flat spectra).
_ENERGY_RTOL = 1e-12


def as_spectrum(x: SpectrumLike, *, center: bool = True) -> Spectrum:
    """Return `x` if it is a Spectrum, else the spectrum of the activation `x`."""
    return x if isinstance(x, Spectrum) else compute_spectrum(x, center=center)


def _positive(spectrum: Spectrum) -> np.ndarray | None:
    values = spectrum.eigenvalues
    if not spectrum.is_finite or values.size == 0 or values[0] <= 0:
        return None
    return values


def _stable_rank(spectrum: Spectrum) -> float:
    values = _positive(spectrum)
    return float("nan") if values is None else float(values.sum() / values[0])


def _participation_ratio(spectrum: Spectrum) -> float:
    values = _positive(spectrum)
    if values is None:
        return float("nan")
    scaled = values / values[0]  # avoids overflow of sum(lambda)**2 for large activations
    return float(scaled.sum() ** 2 / np.square(scaled).sum())


def _cumulative_energy_90(spectrum: Spectrum) -> float:
    values = _positive(spectrum)
    if values is None:
        return float("nan")
    energy = np.cumsum(values)
    target = 0.9 * energy[-1] * (1 - _ENERGY_RTOL)
    return float(np.searchsorted(energy, target, side="left") + 1)


def _nuclear_norm_ratio(spectrum: Spectrum) -> float:
    values = _positive(spectrum)
    if values is None:
        return float("nan")
    sigma = np.sqrt(values)
    return float(sigma.sum() / sigma[0])


def _effective_rank(spectrum: Spectrum) -> float:
    values = _positive(spectrum)
    if values is None:
        return float("nan")
    sigma = np.sqrt(values)
    p = sigma[sigma > 0] / sigma.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def _dormant_fraction(spectrum: Spectrum, tau: float = 0.0) -> float:
    activity = spectrum.unit_activity
    if activity.size == 0 or not np.isfinite(activity).all():
        return float("nan")
    mean = activity.mean()
    if mean == 0:
        return 1.0
    return float(np.mean(activity / mean <= tau))


METRICS: dict[str, Callable[[Spectrum], float]] = {
    "stable_rank": _stable_rank,
    "participation_ratio": _participation_ratio,
    "cumulative_energy_90": _cumulative_energy_90,
    "nuclear_norm_ratio": _nuclear_norm_ratio,
    "effective_rank": _effective_rank,
    "dormant_fraction": _dormant_fraction,
}
DEFAULT_METRICS: tuple[str, ...] = tuple(METRICS)


def validate_metrics(names: Iterable[str]) -> tuple[str, ...]:
    """Return `names` as a tuple, or raise ValueError naming the unknown ones."""
    names = tuple(names)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    return names


def compute_metrics(
    spectrum: Spectrum, names: Iterable[str] = DEFAULT_METRICS, *, dormant_tau: float = 0.0
) -> dict[str, float]:
    """Evaluate the named metrics on one spectrum.

    Args:
        spectrum: A layer's spectrum.
        names: Keys of METRICS.
        dormant_tau: Threshold tau of ``dormant_fraction`` (0 means "never active").
    """
    values = {}
    for name in validate_metrics(names):
        if name == "dormant_fraction":
            values[name] = _dormant_fraction(spectrum, dormant_tau)
        else:
            values[name] = METRICS[name](spectrum)
    return values


def compute_all_metrics(
    x: SpectrumLike, *, center: bool = True, dormant_tau: float = 0.0
) -> dict[str, float]:
    """Every metric of `x` (a Spectrum or an activation), from one spectrum."""
    return compute_metrics(as_spectrum(x, center=center), DEFAULT_METRICS, dormant_tau=dormant_tau)


def stable_rank(x: SpectrumLike, *, center: bool = True) -> float:
    """Sum of eigenvalues over the largest: how many directions carry the top one's energy."""
    return _stable_rank(as_spectrum(x, center=center))


def participation_ratio(x: SpectrumLike, *, center: bool = True) -> float:
    """(sum lambda)^2 / sum lambda^2: the number of equally strong directions it equals."""
    return _participation_ratio(as_spectrum(x, center=center))


def cumulative_energy_90(x: SpectrumLike, *, center: bool = True) -> float:
    """Smallest number of leading directions holding 90 % of the energy."""
    return _cumulative_energy_90(as_spectrum(x, center=center))


def nuclear_norm_ratio(x: SpectrumLike, *, center: bool = True) -> float:
    """Sum of singular values over the largest one."""
    return _nuclear_norm_ratio(as_spectrum(x, center=center))


def effective_rank(x: SpectrumLike, *, center: bool = True) -> float:
    """exp of the entropy of the normalised singular values (Roy & Vetterli 2007)."""
    return _effective_rank(as_spectrum(x, center=center))


def dormant_fraction(x: SpectrumLike, *, tau: float = 0.0) -> float:
    """Share of units whose mean |activation| is at most tau times the layer mean
    (Sokar et al. 2023)."""
    return _dormant_fraction(as_spectrum(x), tau)
