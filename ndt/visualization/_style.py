"""The look shared by every figure: matplotlib import, palette, labels, axes, legend, saving."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ndt.core.metrics import REGISTRY
from ndt.errors import NdtError
from ndt.visualization._data import use_log_x

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

INSTALL_HINT = "pip install matplotlib"

# Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour-vision
# deficiencies. Yellow is last because thin yellow lines vanish on white.
OKABE_ITO = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#000000",
    "#F0E442",
)
# Beyond this many layers, colour encodes depth on a sequential, colour-blind-safe map.
_MAX_CATEGORICAL = len(OKABE_ITO)
# Beyond this many layers a legend stops being readable; a depth colour bar replaces it.
_MAX_LEGEND = 24

# Axis labels: each metric's from the registry (ndt.core.metrics), and the training scalars.
METRIC_LABELS = {
    **{name: metric.axis_label for name, metric in REGISTRY.items()},
    "loss": "training loss",
    "grad_norm": "gradient norm",
}

SAVE_FORMATS = (".png", ".svg", ".pdf")


def metric_title(metric: str) -> str:
    """A metric's short name for titles: ``stable_rank`` -> ``Stable rank``."""
    return metric.replace("_", " ").capitalize()


def metric_label(metric: str) -> str:
    """A metric's axis label with its formula or unit."""
    return METRIC_LABELS.get(metric, metric_title(metric))


def label_metric_axis(ax: Axes, metric: str) -> None:
    """Label the y axis with `metric`; a metric the registry declares integer-valued gets
    whole-number ticks only."""
    ax.set_ylabel(metric_label(metric))
    set_metric_ticks(ax, metric)


def set_metric_ticks(ax: Axes, metric: str) -> None:
    """Whole-number y ticks for a metric the registry declares integer-valued."""
    declared = REGISTRY.get(metric)
    if declared is not None and declared.integer:
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def new_figure(
    figsize: tuple[float, float], nrows: int = 1, ncols: int = 1, **kwargs: object
) -> tuple[Figure, object]:
    """A Figure on the Agg canvas (no global pyplot state) and its axes.

    Raises:
        NdtError: if matplotlib is not installed, with the command that installs it.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise NdtError(f"plotting needs matplotlib; install it with {INSTALL_HINT}") from None
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=nrows * ncols == 1, **kwargs)
    return fig, axes


def layer_colors(layers: Sequence[str]) -> dict[str, object]:
    """One colour per layer: Okabe-Ito for few layers, cividis by depth for many."""
    if len(layers) <= _MAX_CATEGORICAL:
        return dict(zip(layers, OKABE_ITO, strict=False))
    from matplotlib import colormaps

    cmap = colormaps["cividis"]
    return {
        layer: cmap(x) for layer, x in zip(layers, np.linspace(0.0, 0.92, len(layers)), strict=True)
    }


def set_step_axis(ax: Axes, steps: Sequence[int], logx: bool | None) -> bool:
    """Label the x axis with steps; log scale if asked, or if None and steps look log-spaced.

    Step 0 cannot sit on a log axis; with it present the axis is symmetric-log, linear
    below the smallest positive step.
    """
    steps = np.asarray(steps)
    log = use_log_x(steps) if logx is None else logx
    positive = steps[steps > 0]
    if log and positive.size:
        if (steps <= 0).any():
            ax.set_xscale("symlog", linthresh=float(positive.min()), linscale=0.6)
        else:
            ax.set_xscale("log")
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.xaxis.set_major_formatter(FuncFormatter(_step_label))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("training step" + ("  (log scale)" if log else ""))
    ax.grid(True, alpha=0.25, linewidth=0.6)
    return log


def _step_label(value: float, _position: int | None = None) -> str:
    """Plain step numbers on log axes: 0, 1, 10, 100, 1k, 10k, 1M."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def add_layer_legend(
    fig: Figure, axes: Axes | Sequence[Axes], layers: Sequence[str], colors: dict, extra=()
) -> None:
    """Legend of layers (and `extra` handles) outside the data, right of the axes.

    Too many layers for a legend get a colour bar of depth instead, labelled with the first,
    middle and last layer.
    """
    many = not hasattr(axes, "get_lines")
    first = axes[0] if many else axes
    names = set(layers)
    handles = [h for h in first.get_lines() if h.get_label() in names]
    if len(layers) <= _MAX_LEGEND:
        style = {"frameon": False, "fontsize": "small", "title": "layer"}
        style["ncols"] = 1 if len(layers) <= 14 else 2
        if many:
            fig.legend(handles=[*handles, *extra], loc="outside right upper", **style)
        else:
            first.legend(
                handles=[*handles, *extra],
                loc="upper left",
                bbox_to_anchor=(1.01, 1.0),
                borderaxespad=0.0,
                **style,
            )
        return
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize

    cmap = ListedColormap([colors[layer] for layer in layers])
    mappable = ScalarMappable(Normalize(-0.5, len(layers) - 0.5), cmap)
    bar = fig.colorbar(mappable, ax=axes, pad=0.02, fraction=0.05)
    ticks = sorted({0, len(layers) // 2, len(layers) - 1})
    bar.set_ticks(ticks, labels=[layers[i] for i in ticks], fontsize="small")
    bar.set_label("layer (model order)")
    if extra:
        fig.legend(handles=list(extra), loc="outside lower center", frameon=False, fontsize="small")


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 200) -> Path:
    """Save `fig` as PNG, SVG or PDF (chosen by the extension), creating the folder.

    Raises:
        NdtError: for another extension or a path that cannot be written.
    """
    path = Path(path)
    if path.suffix.lower() not in SAVE_FORMATS:
        raise NdtError(f"cannot save a figure as {path.name!r}; use a .png, .svg or .pdf file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata=_metadata(path))
    except OSError as exc:
        raise NdtError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _metadata(path: Path) -> dict[str, str]:
    # Reproducible files: no creation date in SVG/PDF, no software version noise in PNG.
    suffix = path.suffix.lower()
    if suffix == ".svg":
        return {"Date": None}
    if suffix == ".pdf":
        return {"CreationDate": None}
    return {"Software": None}


def layer_hex_colors(layers: Sequence[str]) -> list[str]:
    """The figures' layer colours as hex strings (a blue-to-orange ramp without matplotlib)."""
    try:
        from matplotlib.colors import to_hex

        return [to_hex(color) for color in layer_colors(layers).values()]
    except ImportError:
        pass
    if len(layers) <= len(OKABE_ITO):
        return list(OKABE_ITO[: len(layers)])
    start, end = np.array([0x00, 0x20, 0x4C]), np.array([0xE6, 0x9F, 0x00])
    ramp = np.linspace(0.0, 1.0, len(layers))[:, None] * (end - start) + start
    return ["#{:02x}{:02x}{:02x}".format(*row) for row in ramp.round().astype(int)]
