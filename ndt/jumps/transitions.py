"""From per-curve jumps to transitions of the run: combined p-values, Holm, grouping.

A transition is a stretch of consecutive checkpoint intervals where the run as a whole
changed. Each interval of the run's step grid gets one p-value that combines every tested
curve's p-value there by the Cauchy combination test (Liu & Xie 2020), which stays valid
under arbitrary dependence between the curves (in the tail that decides significance):
the curves of one run are strongly dependent, several metrics of one layer most of all.
Holm's step-down procedure over the intervals then controls the family-wise error rate,
and so the false discovery rate, of the intervals called significant; significant
intervals at most `tolerance` apart form one transition.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

#: Columns of the ``/jumps/transitions`` table, in order (docs/results-format.md).
TRANSITION_COLUMNS: tuple[str, ...] = (
    "rank",
    "prev_step",
    "step",
    "peak_prev_step",
    "peak_step",
    "p_value",
    "p_adjusted",
    "n_curves",
    "layers",
    "metrics",
    "strongest",
)
#: Curves named in a transition's `strongest` column.
N_STRONGEST = 3
#: Combined p-values below this rank as equal: so far out, the Gaussian tails of the null
#: say more about the model than about the data. Ties go to the transition in which more
#: curves moved at the peak interval, then to the larger local t.
RANK_P_FLOOR = 1e-10


#: P-values above this enter the Cauchy combination as this (see `cauchy_combination`).
MAX_COMBINED_P = 0.99


def cauchy_combination(p_values: NDArray[np.float64], axis: int = 0) -> NDArray[np.float64]:
    """Combine p-values by the Cauchy combination test, equal weights, along `axis`.

    T = mean(tan((1/2 - p) pi)) is standard Cauchy when every p is uniform, whatever
    their dependence, to a good approximation in the upper tail (Liu & Xie 2020); the
    combined p-value is P(Cauchy > T). NaN entries (untested) are left out. A p-value of
    exactly 1 would add -inf, so p-values enter capped at MAX_COMBINED_P (a term of at
    least -32): one flat curve cannot veto a change every other curve shows. Computed
    through 1/p for small p, so p-values far below float epsilon keep their size.
    All-NaN slices combine to 1.
    """
    p = np.asarray(p_values, dtype=np.float64)
    tested = np.isfinite(p)
    p = np.clip(np.where(tested, p, 0.5), 1e-300, MAX_COMBINED_P)
    small = p < 1e-15
    # tan((1/2 - p) pi) = 1 / tan(p pi), which is 1 / (p pi) for tiny p.
    terms = np.where(small, 1.0 / (np.where(small, p, 1.0) * np.pi), np.tan((0.5 - p) * np.pi))
    count = tested.sum(axis=axis)
    statistic = np.where(tested, terms, 0.0).sum(axis=axis) / np.maximum(count, 1)
    statistic = np.where(count > 0, statistic, -np.inf)
    # P(Cauchy > T) = arctan(1 / T) / pi for T > 0, without cancellation for large T.
    upper = np.arctan(1.0 / np.maximum(statistic, 1e-300)) / np.pi
    lower = 0.5 - np.arctan(statistic) / np.pi
    return np.clip(np.where(statistic > 0, upper, lower), 0.0, 1.0)


def holm(p_values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Holm's step-down adjusted p-values (family-wise error rate), same shape as input."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def group_intervals(significant: NDArray[np.bool_], tolerance: int) -> list[list[int]]:
    """Indices of significant intervals, chained into groups at most `tolerance` apart."""
    groups: list[list[int]] = []
    for index in np.flatnonzero(significant):
        if groups and index - groups[-1][-1] <= max(tolerance, 1):
            groups[-1].append(int(index))
        else:
            groups.append([int(index)])
    return groups


def transitions_frame(
    steps: NDArray[np.int64],
    interval_p: NDArray[np.float64],
    interval_adjusted: NDArray[np.float64],
    groups: Sequence[Sequence[int]],
    moved: pd.DataFrame,
) -> pd.DataFrame:
    """One row per group of significant intervals, ranked by the peak's combined p-value.

    Args:
        steps: The run's step grid, shape (n_steps,); interval i lies between steps[i] and
            steps[i + 1].
        interval_p: Combined p-value of each interval, shape (n_steps - 1,).
        interval_adjusted: Holm-adjusted p-values, shape (n_steps - 1,).
        groups: Interval indices of each transition.
        moved: The significant curve rows (columns layer, metric, step, prev_step,
            value_before, value_after, score), already restricted to transitions.
    """
    rows = []
    for group in groups:
        peak = min(group, key=lambda i: (interval_p[i], i))
        start, end = int(steps[group[0]]), int(steps[group[-1] + 1])
        inside = moved[(moved["prev_step"] >= start) & (moved["step"] <= end)]
        inside = inside.sort_values("score", ascending=False, kind="stable")
        strongest = "; ".join(
            f"{r.layer} {r.metric} {r.value_before:.4g}→{r.value_after:.4g}"
            for r in inside.head(N_STRONGEST).itertuples()
        )
        rows.append(
            {
                "prev_step": start,
                "step": end,
                "peak_prev_step": int(steps[peak]),
                "peak_step": int(steps[peak + 1]),
                "p_value": float(interval_p[peak]),
                "p_adjusted": float(interval_adjusted[peak]),
                "n_curves": len(inside),
                "layers": ",".join(dict.fromkeys(inside["layer"])),
                "metrics": ",".join(dict.fromkeys(inside["metric"])),
                "strongest": strongest,
                "_floored": max(float(interval_p[peak]), RANK_P_FLOOR),
                "_at_peak": int(
                    (
                        (inside["prev_step"] <= steps[peak]) & (inside["step"] >= steps[peak + 1])
                    ).sum()
                ),
                "_score": float(inside["score"].max()) if len(inside) else 0.0,
            }
        )
    hidden = ["_floored", "_at_peak", "_score"]
    frame = pd.DataFrame(rows, columns=[*TRANSITION_COLUMNS[1:], *hidden])
    frame = frame.sort_values(hidden, ascending=[True, False, False], kind="stable")
    frame.insert(0, "rank", np.arange(1, len(frame) + 1, dtype=np.int64))
    return frame.drop(columns=hidden).astype(
        {"prev_step": np.int64, "step": np.int64, "peak_prev_step": np.int64,
         "peak_step": np.int64, "n_curves": np.int64, "p_value": np.float64,
         "p_adjusted": np.float64}
    ).reset_index(drop=True)  # fmt: skip
