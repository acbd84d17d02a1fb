"""Dimensionality metrics: each one a pure function of a layer's `Spectrum`, listed in METRICS
under its name in the registry of `ndt.core.metrics` (which holds its label, unit and kind).

The public functions (`stable_rank`, ...) also accept an activation matrix (n_samples,
n_features), as the reference API does; it is turned into a spectrum first (by a float64
SVD, centred by default like ``ndt track``). ``definitions="ndtracker"`` reproduces the
ndtracker package instead: uncentred, and a participation ratio on the singular values.
With lambda_i the eigenvalues of A^T A and sigma_i = sqrt(lambda_i):

- stable_rank          = sum(lambda) / max(lambda)
- participation_ratio  = sum(lambda)**2 / sum(lambda**2)
- cumulative_energy_90 = smallest k with lambda_1 + ... + lambda_k >= 0.9 sum(lambda)
- nuclear_norm_ratio   = sum(sigma) / max(sigma)
- effective_rank       = exp(-sum p_i log p_i), p_i = sigma_i / sum(sigma)
- dormant_fraction     = share of units whose mean |a| over the layer's mean is <= tau

A degenerate spectrum (all zero) gives NaN for the ratios; see docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np
import torch

from ndt.core.metrics import DEFAULT_METRICS, DEFINITIONS, REGISTRY, Definitions
from ndt.core.spectrum import Spectrum
from ndt.errors import NdtError

SpectrumLike = Spectrum | torch.Tensor | np.ndarray

# Absorbs round-off when sum(lambda[:k]) equals 0.9 * sum(lambda) exactly (flat spectra).
_ENERGY_RTOL = 1e-12


def check_definitions(definitions: str) -> str:
    """Return `definitions` if it is "ndt" or "ndtracker", else raise NdtError."""
    if definitions not in DEFINITIONS:
        raise NdtError(f"unknown definitions '{definitions}'; choose ndt or ndtracker")
    return definitions


def as_spectrum(
    x: SpectrumLike, *, center: bool | None = None, definitions: Definitions = "ndt"
) -> Spectrum:
    """Return `x` if it is a Spectrum, else the spectrum of the activation matrix `x`.

    Args:
        x: A Spectrum, or an activation matrix (n_samples, n_features) as a torch tensor or
            numpy array.
        center: Centre over samples first; None takes the definitions' choice (ndt: yes,
            ndtracker: no).
        definitions: "ndt" or "ndtracker" (see docs/metrics.md).

    Raises:
        NdtError (a ValueError): if the matrix is not 2-D, is empty, holds NaN or Inf, or
            its SVD fails.
    """
    if isinstance(x, Spectrum):
        return x
    check_definitions(definitions)
    if center is None:
        center = definitions == "ndt"
    return _matrix_spectrum(x, center=center)


def _matrix_spectrum(x: torch.Tensor | np.ndarray, *, center: bool) -> Spectrum:
    """The spectrum of a 2-D matrix from its float64 singular values."""
    matrix = torch.as_tensor(x)
    if matrix.ndim != 2:
        raise NdtError(f"Expected 2D matrix, got {matrix.ndim}D of shape {tuple(matrix.shape)}")
    if matrix.numel() == 0:
        raise NdtError(
            f"Expected a non-empty matrix, got shape {tuple(matrix.shape)}: "
            "there are no singular values"
        )
    matrix = matrix.detach().to(torch.float64)
    if not torch.isfinite(matrix).all():
        raise NdtError("Matrix contains NaN or Inf values; check the activations")
    activity = matrix.abs().mean(0).cpu().numpy()
    if center:
        matrix = matrix - matrix.mean(0)
    try:
        sigma = torch.linalg.svd(matrix, full_matrices=False)[1].cpu().numpy()
    except RuntimeError as exc:
        raise NdtError(f"SVD computation failed: {exc}") from exc
    values = np.square(sigma)
    # As for the Gram route: round-off on the null space is zeroed (see `_eigenvalues`).
    floor = values[0] * max(matrix.shape) * np.finfo(np.float64).eps if values.size else 0.0
    return Spectrum(
        eigenvalues=np.where(values > floor, values, 0.0),
        unit_activity=activity,
        n_samples=int(matrix.shape[0]),
        n_features=int(matrix.shape[1]),
    )


def _table(spectra: Sequence[Spectrum]) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of several spectra as rows of one (k, m) array, zero-padded (zeros change
    no metric), each row scaled by its largest value; and which rows are usable (finite,
    non-empty, not all zero), as a (k,) mask. Unusable rows hold ones."""
    width = max((s.eigenvalues.size for s in spectra), default=0)
    table = np.zeros((len(spectra), max(width, 1)))
    for row, spectrum in enumerate(spectra):
        table[row, : spectrum.eigenvalues.size] = spectrum.eigenvalues
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(table).all(axis=1) & (table[:, 0] > 0)
    table[~ok] = 1.0
    # Scaled by the top eigenvalue: the ratios are unchanged, and squares cannot overflow.
    return table / table[:, :1], ok


def _masked(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    return np.where(ok, values, np.nan)


def _stable_rank_rows(scaled: np.ndarray, ok: np.ndarray) -> np.ndarray:
    return _masked(scaled.sum(axis=1), ok)


def _participation_ratio_rows(scaled: np.ndarray, ok: np.ndarray) -> np.ndarray:
    return _masked(scaled.sum(axis=1) ** 2 / np.square(scaled).sum(axis=1), ok)


def _sigma_participation_ratio_rows(scaled: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """ndtracker's participation ratio: (sum sigma)^2 / sum sigma^2."""
    sigma = np.sqrt(scaled)
    return _masked(sigma.sum(axis=1) ** 2 / scaled.sum(axis=1), ok)


def _cumulative_energy_rows(
    scaled: np.ndarray, ok: np.ndarray, threshold: float = 0.9
) -> np.ndarray:
    energy = np.cumsum(scaled, axis=1)
    target = threshold * energy[:, -1:] * (1 - _ENERGY_RTOL)
    return _masked((energy < target).sum(axis=1) + 1.0, ok)


def _nuclear_norm_ratio_rows(scaled: np.ndarray, ok: np.ndarray) -> np.ndarray:
    return _masked(np.sqrt(scaled).sum(axis=1), ok)


def _effective_rank_rows(scaled: np.ndarray, ok: np.ndarray) -> np.ndarray:
    sigma = np.sqrt(scaled)
    p = sigma / sigma.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return _masked(np.exp(-terms.sum(axis=1)), ok)


_ROWS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "stable_rank": _stable_rank_rows,
    "participation_ratio": _participation_ratio_rows,
    "cumulative_energy_90": _cumulative_energy_rows,
    "nuclear_norm_ratio": _nuclear_norm_ratio_rows,
    "effective_rank": _effective_rank_rows,
}


def _one(rows: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[[Spectrum], float]:
    """The single-spectrum form of a metric computed on rows of spectra."""

    def metric(spectrum: Spectrum) -> float:
        return float(rows(*_table([spectrum]))[0])

    metric.__name__ = rows.__name__.removesuffix("_rows")
    return metric


_stable_rank = _one(_stable_rank_rows)
_participation_ratio = _one(_participation_ratio_rows)
_sigma_participation_ratio = _one(_sigma_participation_ratio_rows)
_nuclear_norm_ratio = _one(_nuclear_norm_ratio_rows)
_effective_rank = _one(_effective_rank_rows)


def _cumulative_energy_90(spectrum: Spectrum, threshold: float = 0.9) -> float:
    return float(_cumulative_energy_rows(*_table([spectrum]), threshold)[0])


def _dormant_fraction(spectrum: Spectrum, tau: float = 0.0) -> float:
    activity = spectrum.unit_activity
    # sum / size rather than np.mean: the same value, without numpy's per-call overhead,
    # which counts for the tracker's many small layers.
    total = float(activity.sum()) if activity.size else float("nan")
    if not np.isfinite(total):
        return float("nan")
    if total == 0:
        return 1.0
    return np.count_nonzero(activity <= tau * (total / activity.size)) / activity.size


def _dormant_fraction_rows(spectra: Sequence[Spectrum], tau: float) -> np.ndarray:
    """`_dormant_fraction` of several spectra, one array operation per layer width."""
    fractions = np.full(len(spectra), np.nan)
    by_width: dict[int, list[int]] = {}
    for index, spectrum in enumerate(spectra):
        by_width.setdefault(spectrum.unit_activity.size, []).append(index)
    for width, indices in by_width.items():
        if width == 0:
            continue
        activity = np.stack([spectra[i].unit_activity for i in indices])
        total = activity.sum(axis=1)
        with np.errstate(invalid="ignore"):
            dormant = np.count_nonzero(activity <= tau * (total / width)[:, None], axis=1)
        fractions[indices] = np.where(
            np.isfinite(total), np.where(total == 0, 1.0, dormant / width), np.nan
        )
    return fractions


# A metric is its row function in `_ROWS` (all spectra at once, on their scaled eigenvalues)
# and its entry in the registry; `dormant_fraction`, a function of the unit activity, is the
# one exception. METRICS holds each one's single-spectrum form, in the registry's order.
_UNIT_ACTIVITY_METRICS = {"dormant_fraction": _dormant_fraction}
if set(_ROWS) | set(_UNIT_ACTIVITY_METRICS) != set(REGISTRY):
    raise ImportError(
        f"ndt.core.estimators._ROWS {sorted(_ROWS)} (with {sorted(_UNIT_ACTIVITY_METRICS)}) "
        f"and ndt.core.metrics.REGISTRY {sorted(REGISTRY)} must list the same metrics"
    )
METRICS: dict[str, Callable[[Spectrum], float]] = {
    name: _UNIT_ACTIVITY_METRICS[name] if name in _UNIT_ACTIVITY_METRICS else _one(_ROWS[name])
    for name in REGISTRY
}


def validate_metrics(names: Iterable[str]) -> tuple[str, ...]:
    """Return `names` as a tuple, or raise ValueError naming the unknown ones."""
    names = tuple(names)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise NdtError(f"unknown metric {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    return names


def compute_metrics(
    spectrum: Spectrum,
    names: Iterable[str] = DEFAULT_METRICS,
    *,
    dormant_tau: float = 0.0,
    definitions: Definitions = "ndt",
) -> dict[str, float]:
    """Evaluate the named metrics on one spectrum.

    Args:
        spectrum: A layer's spectrum.
        names: Keys of METRICS.
        dormant_tau: Threshold tau of ``dormant_fraction`` (0 means "never active").
        definitions: "ndtracker" takes the sigma-based participation ratio.
    """
    return compute_metrics_many([spectrum], names, dormant_tau=dormant_tau,
                                definitions=definitions)[0]  # fmt: skip


def compute_metrics_many(
    spectra: Sequence[Spectrum],
    names: Iterable[str] = DEFAULT_METRICS,
    *,
    dormant_tau: float = 0.0,
    definitions: Definitions = "ndt",
) -> list[dict[str, float]]:
    """`compute_metrics` of several spectra at once (one array operation per metric for
    all of them, the cost that matters for many small layers)."""
    names = validate_metrics(names)
    table = metrics_table(spectra, names, dormant_tau=dormant_tau, definitions=definitions)
    return [dict(zip(names, row, strict=True)) for row in table.tolist()]


def metrics_table(
    spectra: Sequence[Spectrum],
    names: Sequence[str],
    *,
    dormant_tau: float = 0.0,
    definitions: Definitions = "ndt",
) -> np.ndarray:
    """The metrics of several spectra as a (len(spectra), len(names)) float64 array, one
    column per name (names already validated)."""
    rows = dict(_ROWS)
    if check_definitions(definitions) == "ndtracker":
        rows["participation_ratio"] = _sigma_participation_ratio_rows
    scaled, ok = _table(spectra)
    table = np.empty((len(spectra), len(names)))
    for column, name in enumerate(names):
        table[:, column] = (
            _dormant_fraction_rows(spectra, dormant_tau)
            if name == "dormant_fraction"
            else rows[name](scaled, ok)
        )
    return table


class AllMetrics(NamedTuple):
    """The four metrics of the reference API, in its order (unpacks as four values)."""

    stable_rank: float
    participation_ratio: float
    cumulative_energy_90: int | float
    nuclear_norm_ratio: float


def compute_all_metrics(
    x: SpectrumLike, *, center: bool | None = None, definitions: Definitions = "ndt"
) -> AllMetrics:
    """Stable rank, participation ratio, cumulative energy 90 % and nuclear-norm ratio of
    `x` (a Spectrum or an activation matrix (n_samples, n_features)), from one spectrum.

    For every metric as a dict, use ``compute_metrics(as_spectrum(x))``. The cumulative
    energy is an int (NaN for a degenerate spectrum).
    """
    spectrum = as_spectrum(x, center=center, definitions=definitions)
    values = compute_metrics(spectrum, _REFERENCE_FOUR, definitions=definitions)
    values["cumulative_energy_90"] = _count(values["cumulative_energy_90"])
    return AllMetrics(**values)


_REFERENCE_FOUR = (
    "stable_rank",
    "participation_ratio",
    "cumulative_energy_90",
    "nuclear_norm_ratio",
)


def _count(value: float) -> int | float:
    return int(value) if np.isfinite(value) else value


def stable_rank(
    x: SpectrumLike, *, center: bool | None = None, definitions: Definitions = "ndt"
) -> float:
    """Sum of eigenvalues over the largest: how many directions carry the top one's energy."""
    return _stable_rank(as_spectrum(x, center=center, definitions=definitions))


def participation_ratio(
    x: SpectrumLike, *, center: bool | None = None, definitions: Definitions = "ndt"
) -> float:
    """(sum lambda)^2 / sum lambda^2: the number of equally strong directions it equals.

    With ``definitions="ndtracker"``: (sum sigma)^2 / sum sigma^2 on uncentred activations.
    """
    spectrum = as_spectrum(x, center=center, definitions=definitions)
    if definitions == "ndtracker":
        return _sigma_participation_ratio(spectrum)
    return _participation_ratio(spectrum)


def cumulative_energy_90(
    x: SpectrumLike,
    threshold: float = 0.9,
    *,
    center: bool | None = None,
    definitions: Definitions = "ndt",
) -> int | float:
    """Smallest number of leading directions holding `threshold` of the energy (an int;
    NaN for a degenerate spectrum).

    Raises:
        NdtError (a ValueError): if `threshold` is not in (0, 1].
    """
    if not 0 < threshold <= 1:
        raise NdtError(f"Threshold must be in (0, 1], got {threshold}")
    spectrum = as_spectrum(x, center=center, definitions=definitions)
    return _count(_cumulative_energy_90(spectrum, threshold))


def nuclear_norm_ratio(
    x: SpectrumLike, *, center: bool | None = None, definitions: Definitions = "ndt"
) -> float:
    """Sum of singular values over the largest one."""
    return _nuclear_norm_ratio(as_spectrum(x, center=center, definitions=definitions))


def effective_rank(
    x: SpectrumLike, *, center: bool | None = None, definitions: Definitions = "ndt"
) -> float:
    """exp of the entropy of the normalised singular values (Roy & Vetterli 2007)."""
    return _effective_rank(as_spectrum(x, center=center, definitions=definitions))


def dormant_fraction(x: SpectrumLike, *, tau: float = 0.0) -> float:
    """Share of units whose mean |activation| is at most tau times the layer mean
    (Sokar et al. 2023)."""
    return _dormant_fraction(as_spectrum(x), tau)
