"""How far to trust a jump: a surrogate null that keeps trend and noise, and Benjamini-Hochberg.

The test statistic for a step at checkpoint ``k`` (a change between points ``k-1`` and ``k``)
is the partial F statistic of a step regressor added to a smooth polynomial trend, fitted by
least squares against the checkpoint index. The null model keeps the curve's
fitted trend, its residual noise level and its lag-1 autocorrelation (an AR(1) process),
but has no step.
Because the polynomial trend lies in the span of the design, it cancels from the statistic
exactly, so a surrogate only needs the AR(1) noise; and because the statistic divides by the
residual variance, it does not depend on the noise level either. Only the autocorrelation
``phi`` is plugged in. The p-value compares a candidate's statistic with the *maximum* over
every checkpoint of each surrogate (a scan statistic), so it already pays for having looked
at every position of the curve.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ndt.errors import DetectorError

#: Degree of the polynomial trend a surrogate keeps, in checkpoint index (docs/jumps.md).
TREND_DEGREE = 5
#: Largest lag-1 autocorrelation the null uses; beyond it an AR(1) is close to a random walk.
MAX_PHI = 0.95
#: Log-likelihood a candidate step must add to an AR(1) fit to enter the noise model.
NOISE_STEP_LOGLIK = 10.0
#: Fewest finite points a curve needs: trend (6) + step (1) + residual dof to judge the noise.
MIN_POINTS = 12


@dataclass(frozen=True)
class CurveTest:
    """Significance of the candidate steps in one curve.

    Attributes:
        statistics: Partial F statistic of each candidate, shape (n_candidates,).
        p_values: Surrogate p-value of each candidate, shape (n_candidates,).
        phi: Lag-1 autocorrelation of the AR(1) noise the null used last.
        n_surrogates: Number of surrogate curves drawn.
    """

    statistics: NDArray[np.float64]
    p_values: NDArray[np.float64]
    phi: float
    n_surrogates: int


def trend_basis(
    n_points: int, degree: int = TREND_DEGREE, positions: tuple[float, ...] | None = None
) -> NDArray[np.float64]:
    """Orthonormal polynomial basis, shape (n_points, degree + 1).

    Args:
        n_points: Number of checkpoints.
        degree: Polynomial degree.
        positions: Where each checkpoint lies on the trend's axis (increasing), or None
            for evenly spaced (the checkpoint index).
    """
    if positions is None:
        x = np.linspace(-1.0, 1.0, n_points)
    else:
        x = np.asarray(positions, dtype=np.float64)
        x = 2.0 * (x - x[0]) / max(x[-1] - x[0], np.finfo(float).tiny) - 1.0
    basis, _ = np.linalg.qr(np.polynomial.legendre.legvander(x, degree))
    return basis


def step_regressors(n_points: int) -> NDArray[np.float64]:
    """Column k-1 is 1 from point k on: a step between points k-1 and k, shape (n, n-1)."""
    index = np.arange(n_points)[:, None]
    return (index >= np.arange(1, n_points)[None, :]).astype(np.float64)


def _residualise(matrix: NDArray[np.float64], basis: NDArray[np.float64]) -> NDArray[np.float64]:
    return matrix - basis @ (basis.T @ matrix)


def _raw_lag1(residuals: NDArray[np.float64]) -> NDArray[np.float64]:
    centred = residuals - residuals.mean(axis=-1, keepdims=True)
    numerator = (centred[..., 1:] * centred[..., :-1]).sum(axis=-1)
    denominator = np.maximum((centred * centred).sum(axis=-1), np.finfo(float).tiny)
    return numerator / denominator


_TINY = np.finfo(float).tiny
_PHI_GRID = np.linspace(0.0, 0.98, 50)


def _design(
    n_points: int, degree: int, positions: tuple[float, ...] | None, extra: tuple[int, ...]
) -> NDArray[np.float64]:
    """Orthonormal trend basis, plus the steps at the indices in `extra`."""
    basis = trend_basis(n_points, degree, positions)
    if not extra:
        return basis
    steps = step_regressors(n_points)[:, [k - 1 for k in extra]]
    design, _ = np.linalg.qr(np.hstack([basis, steps]))
    return design


@functools.lru_cache(maxsize=256)
def _phi_bias_map(
    n_points: int, degree: int, positions: tuple[float, ...] | None, extra: tuple[int, ...]
) -> NDArray[np.float64]:
    """Mean lag-1 autocorrelation of AR(1) residuals after the design, per phi in _PHI_GRID."""
    # A fixed seed: the map is a property of the design, not of the user's run.
    rng = np.random.default_rng(20240601)
    design = _design(n_points, degree, positions, extra)
    means = [
        _raw_lag1(_residualise(ar1_noise(rng, 400, n_points, phi).T, design).T).mean()
        for phi in _PHI_GRID
    ]
    return np.maximum.accumulate(np.asarray(means))


def estimate_phi(
    values: NDArray[np.float64],
    degree: int = TREND_DEGREE,
    positions: tuple[float, ...] | None = None,
    extra: tuple[int, ...] = (),
) -> float:
    """Lag-1 autocorrelation of the curve's residuals around its trend, bias-corrected.

    Detrending a short series pulls its sample autocorrelation well below the truth (a
    polynomial fit to 40 points of AR(1) noise with phi = 0.5 leaves residuals with a lag-1
    autocorrelation near 0.3), which would make the surrogates too smooth and the test too
    liberal. The estimate is therefore mapped back through the mean estimate that
    simulated AR(1) noise of each phi gives after the same fit (indirect inference), then
    clipped to [0, MAX_PHI]. The fit is the trend plus the steps at `extra` (see
    `noise_steps`): a real jump left in the residuals would look like autocorrelation.
    """
    n_points = values.size
    extra = tuple(sorted(int(k) for k in extra))
    design = _design(n_points, degree, positions, extra)
    raw = float(_raw_lag1(_residualise(values[:, None], design)[:, 0]))
    means = _phi_bias_map(n_points, degree, positions, extra)
    if raw <= means[0]:
        return 0.0
    return float(min(np.interp(raw, means, _PHI_GRID), MAX_PHI))


def quantum(values: NDArray[np.float64]) -> float:
    """The grid step of a quantised curve (an integer count, a fraction k/width), else 0.

    A curve is quantised when at most three quarters of its values are distinct and every
    gap between distinct values is a whole multiple of the smallest gap.
    """
    levels = np.unique(values)
    if levels.size < 2 or levels.size > 0.75 * values.size:
        return 0.0
    gaps = np.diff(levels)
    q = float(gaps.min())
    ratios = gaps / q
    return q if np.allclose(ratios, np.round(ratios), atol=1e-6) else 0.0


_PROFILE_PHI_GRID = np.linspace(0.0, 0.98, 50)


def _ar1_profile_loglik(values: NDArray[np.float64], design: NDArray[np.float64]) -> float:
    """Largest Gaussian AR(1) log-likelihood of `values` around a linear fit on `design`.

    Exact likelihood (Prais-Winsten transform), the coefficients and innovation variance
    profiled out, phi maximised over a grid in [0, 0.98].
    """
    n_points = values.size
    grid = _PROFILE_PHI_GRID[:, None]
    scale = np.sqrt(1.0 - grid * grid)

    def whiten(x: NDArray[np.float64]) -> NDArray[np.float64]:
        x = x.reshape(n_points, -1)
        out = np.empty((grid.shape[0], *x.shape))
        out[:, 0] = scale * x[0][None, :]
        out[:, 1:] = x[None, 1:] - grid[:, :, None] * x[None, :-1]
        return out

    y = whiten(values)[..., 0]
    x = whiten(design)
    q, _ = np.linalg.qr(x)
    fitted = np.einsum("gnp,gp->gn", q, np.einsum("gnp,gn->gp", q, y))
    rss = np.maximum(np.square(y - fitted).sum(axis=1), _TINY)
    loglik = -0.5 * n_points * np.log(rss / n_points) + np.log(scale[:, 0])
    return float(loglik.max())


def noise_steps(
    values: NDArray[np.float64],
    candidates: list[int] | tuple[int, ...],
    degree: int = TREND_DEGREE,
    positions: tuple[float, ...] | None = None,
) -> tuple[int, ...]:
    """The candidate steps the noise model must include: those an AR(1) cannot explain.

    Backward elimination: starting from the trend plus every candidate step, drop the
    step whose removal costs the least AR(1) profile log-likelihood, while that cost is
    at most NOISE_STEP_LOGLIK. An AR(1) with large phi explains the slow wandering a
    detector splits into segments, so those steps go; a real jump of several noise SDs
    stays even when another jump beside it makes a plateau (each is judged with the
    others present).
    """
    n_points = values.size
    basis = trend_basis(n_points, degree, positions)
    steps = step_regressors(n_points)

    def loglik(chosen: list[int]) -> float:
        if not chosen:
            return _ar1_profile_loglik(values, basis)
        return _ar1_profile_loglik(values, np.hstack([basis, steps[:, [k - 1 for k in chosen]]]))

    chosen = sorted(int(k) for k in candidates)
    if quantum(values) > 0:
        # A staircase of unit steps fits itself exactly (no residual, unbounded
        # likelihood); its candidates never enter the noise model (docs/jumps.md).
        return ()
    while chosen:
        full = loglik(chosen)
        costs = [full - loglik([c for c in chosen if c != k]) for k in chosen]
        weakest = int(np.argmin(costs))
        if costs[weakest] > NOISE_STEP_LOGLIK:
            break
        chosen.pop(weakest)
    return tuple(chosen)


def ar1_noise(
    rng: np.random.Generator, n_surrogates: int, n_points: int, phi: float
) -> NDArray[np.float64]:
    """Stationary unit-variance AR(1) series, shape (n_surrogates, n_points)."""
    return ar1_filter(rng.standard_normal((n_surrogates, n_points)), phi)


def ar1_filter(shocks: NDArray[np.float64], phi: float) -> NDArray[np.float64]:
    """Turn i.i.d. standard normal `shocks` (n_series, n_points) into stationary AR(1)."""
    n_points = shocks.shape[1]
    noise = np.empty_like(shocks)
    noise[:, 0] = shocks[:, 0]
    scale = np.sqrt(1.0 - phi * phi)
    for i in range(1, n_points):
        noise[:, i] = phi * noise[:, i - 1] + scale * shocks[:, i]
    return noise


def max_step_statistic(
    curves: NDArray[np.float64], nuisance: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Largest single-step partial F statistic over all checkpoints, per row.

    Args:
        curves: Curves of shape (n_curves, n_points).
        nuisance: Orthonormal columns every fit includes (trend, other steps), shape
            (n_points, n_nuisance).

    Returns:
        Shape (n_curves,).
    """
    n_points = curves.shape[1]
    steps = _residualise(step_regressors(n_points), nuisance)
    norms = np.linalg.norm(steps, axis=0)
    # A step already in the nuisance span (another candidate's) cannot add anything.
    keep = norms > 1e-9 * np.sqrt(n_points)
    steps = steps[:, keep] / norms[keep]
    residuals = _residualise(curves.T, nuisance).T
    rss0 = np.einsum("ij,ij->i", residuals, residuals)
    gain = np.square(residuals @ steps)
    dof = n_points - nuisance.shape[1] - 1
    rss1 = np.maximum(rss0[:, None] - gain, 1e-12 * rss0[:, None] + _TINY)
    return (gain / (rss1 / dof)).max(axis=1)


def strongest_step(
    values: NDArray[np.float64],
    degree: int = TREND_DEGREE,
    positions: tuple[float, ...] | None = None,
) -> int:
    """Index k of the single step that best explains the curve beyond its trend."""
    values = np.asarray(values, dtype=np.float64)
    basis = trend_basis(values.size, degree, positions)
    steps = _residualise(step_regressors(values.size), basis)
    steps /= np.linalg.norm(steps, axis=0, keepdims=True)
    residuals = _residualise(values[:, None], basis)[:, 0]
    return int(np.argmax(np.square(residuals @ steps))) + 1


def _partial_f(
    values: NDArray[np.float64], candidates: list[int], nuisance: NDArray[np.float64]
) -> tuple[NDArray[np.float64], float]:
    """Partial F of each candidate's step added alone to the orthonormal `nuisance` design."""
    n_points = values.size
    residual = _residualise(values[:, None], nuisance)[:, 0]
    steps = _residualise(step_regressors(n_points)[:, [k - 1 for k in candidates]], nuisance)
    gain = np.square(residual @ steps) / np.maximum(np.einsum("ij,ij->j", steps, steps), _TINY)
    rss0 = float(residual @ residual)
    # A curve that is exactly trend + step leaves no residual; the floor keeps F finite.
    rss1 = np.maximum(rss0 - gain, 1e-12 * rss0 + _TINY)
    return gain / (rss1 / (n_points - nuisance.shape[1] - 1)), rss0


def step_p_values(
    values: NDArray[np.float64],
    candidates: list[int] | tuple[int, ...],
    rng: np.random.Generator,
    n_surrogates: int = 999,
    degree: int = TREND_DEGREE,
    positions: tuple[float, ...] | None = None,
    gate: float = 0.05,
) -> CurveTest:
    """P-values of candidate steps in one curve against a trend + AR(1) surrogate null.

    Each candidate's statistic is its partial F: the drop in residual sum of squares when
    its step is added to a nuisance design, over the residual variance of that fit. Its
    null is the largest partial F any single step reaches on AR(1) surrogates fitted with
    the same nuisance design (the design's own components cancel from the statistic, so
    the surrogates need no trend). Candidates are taken strongest first (forward
    stepwise): the nuisance design is the trend plus the steps of the stronger candidates
    already found with p <= `gate`, so a second real jump is not hidden by the first.
    The noise's autocorrelation is estimated once, around the trend plus the candidate
    steps an AR(1) cannot explain (`noise_steps`), so that a second jump does not pass
    for autocorrelated noise while the first is tested; it is re-estimated only when a
    step joins that was not among them. Once all have joined, each joined step is tested
    again beside all the others. Weaker
    candidates never enter the design: a curve made of small steps (an integer-valued
    metric, or a smooth rise a detector split into segments) would otherwise fit itself
    almost perfectly and look significant everywhere.

    Args:
        values: The curve, shape (n_points,), finite.
        candidates: Distinct checkpoint indices k (1 <= k < n_points) of candidate steps.
        rng: Random generator for the surrogates (seed it for a reproducible run).
        n_surrogates: Number of surrogate curves.
        degree: Degree of the polynomial trend.
        positions: Where the checkpoints lie on the trend's axis (see `trend_basis`).
        gate: P-value at or below which a candidate's step joins the nuisance design.

    Returns:
        The statistics and p-values, in the order of `candidates`.

    Raises:
        DetectorError: if the curve has fewer than MIN_POINTS points or an index is out
            of range.
    """
    values = np.asarray(values, dtype=np.float64)
    n_points = values.size
    if n_points < MIN_POINTS:
        raise DetectorError(
            f"a curve of {n_points} points is too short to test; at least {MIN_POINTS} are needed"
        )
    candidates = [int(k) for k in candidates]
    if any(not 1 <= k < n_points for k in candidates) or len(set(candidates)) < len(candidates):
        raise DetectorError(f"candidates must be distinct indices in 1..{n_points - 1}")
    shocks = rng.standard_normal((n_surrogates, n_points))
    basis = trend_basis(n_points, degree, positions)
    statistics, _ = _partial_f(values, candidates, basis)
    p_values = np.empty(len(candidates))
    accepted: list[int] = []
    in_noise = noise_steps(values, candidates, degree, positions)
    phi = estimate_phi(values, degree, positions, in_noise)
    noise = ar1_filter(shocks, phi)
    for j in np.argsort(-statistics, kind="stable"):
        nuisance = _design(n_points, degree, positions, tuple(accepted))
        statistics[j] = _partial_f(values, [candidates[j]], nuisance)[0][0]
        null = max_step_statistic(noise, nuisance)
        p_values[j] = (1.0 + np.count_nonzero(null >= statistics[j])) / (1.0 + n_surrogates)
        if p_values[j] <= gate:
            accepted.append(candidates[j])
            if not set(accepted) <= set(in_noise):
                phi = estimate_phi(values, degree, positions, tuple(set(in_noise) | set(accepted)))
                noise = ar1_filter(shocks, phi)
    if len(accepted) > 1:
        # Backward pass: an early step was tested while later ones still inflated the noise
        # estimate; test each accepted step again beside all the others.
        for k in accepted:
            j = candidates.index(k)
            nuisance = _design(n_points, degree, positions, tuple(a for a in accepted if a != k))
            statistics[j] = _partial_f(values, [k], nuisance)[0][0]
            null = max_step_statistic(noise, nuisance)
            p_values[j] = (1.0 + np.count_nonzero(null >= statistics[j])) / (1.0 + n_surrogates)
    return CurveTest(statistics, p_values, phi, n_surrogates)


def benjamini_hochberg(p_values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values (q-values), same shape as `p_values`.

    Rejecting every test with q <= alpha controls the false discovery rate at alpha for
    independent or positively dependent tests (Benjamini & Hochberg 1995).
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(adjusted, 1.0)
    return q


def default_n_surrogates(n_tests: int, fdr: float) -> int:
    """Enough surrogates that the smallest p-value can pass the first BH threshold.

    The smallest attainable p-value is 1/(B+1); BH's first threshold is fdr/n_tests. B is
    at least 999 and at least 2 n_tests / fdr - 1, so that threshold is 2 p-value quanta.
    """
    return int(max(999, np.ceil(2.0 * n_tests / fdr) - 1))
