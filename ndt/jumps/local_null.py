"""The local null: each change between two checkpoints, judged against the changes near it.

For a curve y_0..y_{n-1} at steps s_0 < ... < s_{n-1}, interval k is the change
d_k = y_k - y_{k-1}. Training noise accumulates like a diffusion, so the spread of a change
over g steps grows as sqrt(g): every change is put on one scale,
r_k = d_k / sqrt(g_k / median(g)), before it is compared with its neighbours. The reference
of interval k is the `2 * half_window` nearest intervals j with |j - k| >= 2 (the two
intervals beside k share a checkpoint with it, and a change spread over two intervals
would hide itself). Neighbours more than TRIM_SDS robust SDs from their median are dropped
(another jump, a collapse), a straight line in j is fitted to the rest, and the candidate's
distance from that line's prediction at k is a prediction-interval t statistic:

    t_k = (r_k - a_k) / (s_k sqrt(1 + var(a_k) / s_k^2)),  p_k = 2 P(T_{m-2} >= |t_k|),

with a_k the line's value at k, s_k its residual SD and m the neighbours kept. Under the
null (the scaled changes near k are a straight line plus independent Gaussian noise) t_k
follows Student's t with m - 2 degrees of freedom exactly, so p-values are analytic and
reach any size. docs/jumps.md states the assumptions and what happens when they fail.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from ndt.errors import DetectorError
from ndt.jumps.jump_defaults import HALF_WINDOW  # on each side of a candidate, fewer at the ends

#: How the spread of a change grows with the steps it spans: g ** SPACING_EXPONENT.
SPACING_EXPONENT = 0.5
#: Neighbours further than this many robust SDs from their median leave the reference.
TRIM_SDS = 6.0
#: Fewest reference changes left after trimming for a candidate to be tested.
MIN_REFERENCE = 4
#: Fewest finite points a curve needs: a candidate, two gap intervals, MIN_REFERENCE more.
MIN_POINTS = MIN_REFERENCE + 4
_MAD_TO_SD = 1.4826
_TINY = np.finfo(float).tiny


@dataclass(frozen=True)
class IntervalTest:
    """The local test of every interval of one curve.

    Attributes:
        statistic: t statistic of each interval k = 1..n-1, signed, shape (n - 1,);
            0 where the interval could not be tested.
        p_value: Two-sided p-value of each interval, shape (n - 1,); 1 where untested.
        dof: Degrees of freedom of each interval's t distribution, shape (n - 1,).
        scale: Local noise SD of a change at each interval, in the curve's units
            (the denominator of the statistic, rescaled to the interval's spacing).
    """

    statistic: NDArray[np.float64]
    p_value: NDArray[np.float64]
    dof: NDArray[np.int64]
    scale: NDArray[np.float64]


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


#: Reference intervals whose step gap is within this factor of the candidate's come first.
COMPARABLE_SPACING = 2.0


@functools.lru_cache(maxsize=64)
def reference_positions(
    steps: tuple[int, ...], half_window: int = HALF_WINDOW
) -> NDArray[np.int64]:
    """For each interval, the indices of its reference intervals, shape (n, <= 2 h).

    The nearest intervals with |j - k| >= 2 whose step gap is within a factor
    COMPARABLE_SPACING of the candidate's, then (when there are too few of those) the
    nearest others; the left one first on a tie. Near the ends the window extends to the
    other side. Rows are padded with -1.
    """
    gaps = np.diff(np.asarray(steps, dtype=np.float64))
    n_intervals = gaps.size
    index = np.arange(n_intervals)
    distance = np.abs(index[None, :] - index[:, None]).astype(np.float64)
    distance[distance < 2] = np.inf
    ratio = np.abs(np.log(gaps[None, :] / gaps[:, None]))
    other_spacing = ratio > np.log(COMPARABLE_SPACING) + 1e-9
    # Left before right at the same distance: a tiny tie-break on the signed offset.
    key = distance + n_intervals * other_spacing + 1e-6 * (index[None, :] > index[:, None])
    order = np.argsort(key, axis=1, kind="stable")
    width = min(2 * half_window, max(n_intervals - 3, 0))
    chosen = order[:, :width]
    valid = np.take_along_axis(distance, chosen, axis=1) < np.inf
    chosen = np.where(valid, chosen, -1)
    chosen.setflags(write=False)
    return chosen


def score_intervals(
    steps: NDArray[np.int64],
    values: NDArray[np.float64],
    half_window: int = HALF_WINDOW,
    resolution: float | None = None,
) -> IntervalTest:
    """Test every change between consecutive checkpoints of one curve against the local null.

    Args:
        steps: Checkpoint steps, strictly increasing, shape (n_points,).
        values: The curve at those steps, finite, shape (n_points,).
        half_window: Reference intervals on each side of a candidate.
        resolution: The grid step of the curve's values when known: 1 for a metric the
            registry declares integer-valued (`ndt.core.metrics`). None: inferred from the
            values (`quantum`), 0 for a continuous curve.

    Returns:
        One statistic and p-value per interval.

    Raises:
        DetectorError: if the curve is shorter than MIN_POINTS, the steps do not increase,
            or `half_window` is below MIN_REFERENCE / 2.
    """
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if values.size < MIN_POINTS:
        raise DetectorError(
            f"a curve of {values.size} points is too short to test; at least {MIN_POINTS} "
            "are needed"
        )
    if 2 * half_window < MIN_REFERENCE:
        raise DetectorError(f"half_window must be at least {MIN_REFERENCE // 2}, got {half_window}")
    gaps = np.diff(steps)
    if np.any(gaps <= 0):
        raise DetectorError("checkpoint steps must increase strictly")
    spacing = (gaps / np.median(gaps)) ** SPACING_EXPONENT
    scaled = np.diff(values) / spacing
    reference = reference_positions(tuple(int(x) for x in steps), half_window)
    present = reference >= 0
    neighbours = np.where(present, scaled[np.where(present, reference, 0)], np.nan)
    offsets = np.where(present, reference - np.arange(scaled.size)[:, None], 0).astype(float)

    # A floor for the noise: the rounding of a quantised curve (a uniform error of one grid
    # step at each point gives a change an SD of q / sqrt(6)), and float resolution.
    q = quantum(values) if resolution is None else resolution
    floor = max(q / np.sqrt(6.0), 1e-12 * float(np.abs(values).max()), _TINY)
    centre = np.nanmedian(neighbours, axis=1, keepdims=True)
    spread = _MAD_TO_SD * np.nanmedian(np.abs(neighbours - centre), axis=1, keepdims=True)
    limit = TRIM_SDS * np.maximum(spread, floor / spacing[:, None])
    weight = (present & (np.abs(neighbours - centre) <= limit)).astype(np.float64)
    filled = np.where(present, neighbours, 0.0)

    s0, s1, s2 = (np.sum(weight * offsets**p, axis=1) for p in (0, 1, 2))
    t0, t1 = np.sum(weight * filled, axis=1), np.sum(weight * offsets * filled, axis=1)
    det = np.maximum(s0 * s2 - s1 * s1, _TINY)
    intercept = (s2 * t0 - s1 * t1) / det
    slope = (s0 * t1 - s1 * t0) / det
    residual = filled - intercept[:, None] - slope[:, None] * offsets
    dof = (s0 - 2).astype(np.int64)
    rss = np.sum(weight * residual * residual, axis=1)
    sd = np.sqrt(rss / np.maximum(dof, 1))
    denominator = np.maximum(sd * np.sqrt(1.0 + s2 / det), floor / spacing)
    statistic = (scaled - intercept) / denominator
    testable = dof >= MIN_REFERENCE - 2
    statistic = np.where(testable, statistic, 0.0)
    p_value = np.where(testable, 2.0 * stats.t.sf(np.abs(statistic), np.maximum(dof, 1)), 1.0)
    return IntervalTest(
        statistic=statistic,
        p_value=np.clip(p_value, 0.0, 1.0),
        dof=np.where(testable, dof, 0),
        scale=denominator * spacing,
    )
