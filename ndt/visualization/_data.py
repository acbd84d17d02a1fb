"""What the figures draw: the tidy table, the jumps to mark, the layers, the x-axis scale."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ndt.errors import NdtError

# Per-step series a tracker stores beside the metrics; they are not per-layer dimensionality.
SCALAR_COLUMNS = ("loss", "grad_norm")
_KEY_COLUMNS = ("step", "layer")
_JUMP_COLUMNS = ("layer", "metric", "step", "prev_step", "value_before", "value_after", "delta")

CurveData = pd.DataFrame | Mapping[str, pd.DataFrame]


def tidy_frame(data: CurveData, *, layer_name: str | None = None) -> pd.DataFrame:
    """Bring curves into the tidy form: columns step, layer, then one column per metric.

    Args:
        data: The tidy table (`ndt.io.store.load_results`), a tracker's
            ``get_results()`` (layer name -> DataFrame with a ``step`` column), or one
            layer's DataFrame without a ``layer`` column.
        layer_name: The layer name given to a DataFrame that has no ``layer`` column.

    Returns:
        A new DataFrame; layers keep their first-appearance (model) order.

    Raises:
        NdtError: if there is no ``step`` column or no rows.
    """
    if isinstance(data, Mapping):
        parts = []
        for layer, part in data.items():
            part = part.drop(columns="layer", errors="ignore")
            parts.append(part.assign(layer=str(layer)))
        if not parts:
            raise NdtError("there are no curves to plot (no layers)")
        frame = pd.concat(parts, ignore_index=True)
        order = {layer: i for i, layer in enumerate(dict.fromkeys(map(str, data)))}
        frame = frame.sort_values(
            ["step", "layer"], key=lambda c: c.map(order) if c.name == "layer" else c
        )
    elif isinstance(data, pd.DataFrame):
        frame = data.copy()
        if "layer" not in frame.columns:
            frame["layer"] = layer_name or "layer"
    else:
        raise NdtError(f"cannot plot a {type(data).__name__}; pass the tidy results DataFrame")
    if "step" not in frame.columns:
        raise NdtError("the curves have no 'step' column; pass `ndt.io.store.load_results(path)`")
    if frame.empty:
        raise NdtError("there are no curves to plot (the table has no rows)")
    rest = [c for c in frame.columns if c not in _KEY_COLUMNS]
    return frame[["step", "layer", *rest]].reset_index(drop=True)


def layer_order(frame: pd.DataFrame) -> list[str]:
    """Layer names in model order (their order of first appearance)."""
    return [str(name) for name in pd.unique(frame["layer"])]


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The numeric per-layer metric columns, in table order (loss and grad_norm excluded)."""
    return [
        column
        for column in frame.columns
        if column not in _KEY_COLUMNS
        and column not in SCALAR_COLUMNS
        and pd.api.types.is_numeric_dtype(frame[column])
    ]


def check_metrics(frame: pd.DataFrame, metrics: Iterable[str] | None) -> list[str]:
    """Validate requested metrics against the table; None means all of them.

    Raises:
        NdtError: for a metric the table lacks, listing those present, or if none is present.
    """
    present = metric_columns(frame)
    if not present:
        raise NdtError("the results hold no metric curves; run `ndt track` first")
    if metrics is None:
        return present
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in present]
    if unknown:
        raise NdtError(
            f"unknown metric {', '.join(map(repr, unknown))}; these results have "
            f"{', '.join(present)}"
        )
    return metrics


def _jump_row(jump: object, layer: str | None) -> dict[str, object]:
    before = float(getattr(jump, "value_before", math.nan))
    after = float(getattr(jump, "value_after", math.nan))
    return {
        "layer": getattr(jump, "layer", None) or layer,
        "metric": getattr(jump, "metric", None) or getattr(jump, "metric_name", None),
        "step": int(jump.step),
        "prev_step": getattr(jump, "prev_step", None),
        "value_before": before,
        "value_after": after,
        "delta": after - before,
        "p_value": getattr(jump, "p_value", math.nan),
        "q_value": getattr(jump, "q_value", math.nan),
        "significant": getattr(jump, "significant", True),
    }


def jumps_frame(jumps: object, *, layer_name: str | None = None) -> pd.DataFrame | None:
    """Bring jumps into the `/jumps` table form, or None when there are none.

    Args:
        jumps: The `/jumps` table (`read_results(path).jumps`), a tracker's
            ``detect_jumps()`` (layer -> list of Jump), a list of Jump records, or None.
        layer_name: Layer given to Jump records that do not name theirs.
    """
    if jumps is None:
        return None
    if isinstance(jumps, pd.DataFrame):
        frame = jumps.copy()
    elif isinstance(jumps, Mapping):
        frame = pd.DataFrame([_jump_row(j, str(k)) for k, js in jumps.items() for j in js])
    else:
        frame = pd.DataFrame([_jump_row(j, layer_name) for j in jumps])
    if frame.empty:
        return None
    if "step" not in frame.columns:
        raise NdtError("the jumps table has no 'step' column; pass `read_results(path).jumps`")
    for column in _JUMP_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    if frame["delta"].isna().all():
        frame["delta"] = frame["value_after"].astype(float) - frame["value_before"].astype(float)
    if "significant" not in frame.columns:
        frame["significant"] = True
    return frame


def marked_jumps(
    jumps: pd.DataFrame | None,
    metric: str,
    layers: Sequence[str],
    *,
    significant_only: bool = True,
) -> pd.DataFrame:
    """The (significant) jumps of `metric` in `layers`; rows naming no metric match any."""
    if jumps is None:
        return pd.DataFrame(columns=[*_JUMP_COLUMNS, "significant"])
    keep = pd.Series(True, index=jumps.index)
    if significant_only:
        keep &= jumps["significant"].fillna(False).astype(bool)
    keep &= jumps["metric"].isna() | (jumps["metric"] == metric)
    keep &= jumps["layer"].isin(list(layers)) | (jumps["layer"].isna() & (len(layers) == 1))
    picked = jumps[keep].copy()
    picked.loc[picked["layer"].isna(), "layer"] = layers[0] if len(layers) else None
    return picked.reset_index(drop=True)


def use_log_x(steps: Iterable[int]) -> bool:
    """Whether the checkpoint steps are clearly log-spaced (the rule of docs/commands/plot.md).

    True when the positive steps span at least two decades (max / min >= 100) and their
    median lies below 10 % of the largest step, i.e. on a linear axis more than half of the
    checkpoints would be squeezed into the first tenth of it.
    """
    positive = np.unique(np.asarray(list(steps), dtype=np.float64))
    positive = positive[positive > 0]
    if positive.size < 4 or positive[-1] / positive[0] < 100:
        return False
    return bool(np.median(positive) < 0.1 * positive[-1])


def run_name(path: object, checkpoint_dir: str = "") -> str:
    """A run's name for titles: its checkpoint folder, else the results file's stem."""
    if checkpoint_dir:
        folder = Path(checkpoint_dir)
        if folder.name in ("ckpts", "checkpoints", "ckpt") and folder.parent.name:
            folder = folder.parent
        if folder.name:
            return folder.name
    return Path(str(path)).stem
