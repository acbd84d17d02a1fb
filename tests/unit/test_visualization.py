"""Tests of ndt.visualization: the figures hold exactly the lines, markers and cells asked for."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ndt.errors import NdtError
from ndt.io.store import Results

# The results-file figures (ndt plot's); ndt.visualization's names are the reference API's.
from ndt.visualization import plot_layer_heatmap, plot_metric_grid
from ndt.visualization._data import run_name, tidy_frame, use_log_x
from ndt.visualization._style import save_figure
from ndt.visualization.curves import plot_jump_curves, plot_metric_curves, plot_phase_curves
from ndt.visualization.heatmaps import plot_metric_correlations

LAYERS = ["embed", "blocks.0.mlp", "blocks.1.mlp", "head"]  # model order, not sorted
STEPS = np.arange(0, 400, 20)


def _results() -> Results:
    rng = np.random.default_rng(0)
    n_steps, n_layers = len(STEPS), len(LAYERS)
    after = (STEPS >= 200)[:, None] * np.array([0.0, 5.0, -3.0, 0.0])
    stable = 8.0 + np.arange(n_layers) + after + rng.normal(0, 0.1, (n_steps, n_layers))
    metrics = {
        "stable_rank": stable,
        "participation_ratio": 0.5 * stable + rng.normal(0, 0.2, stable.shape),
        "nuclear_norm_ratio": rng.uniform(2, 3, stable.shape),
    }
    rows = [
        ("blocks.0.mlp", "stable_rank", 200, 180, 9.0, 14.0, 5.0, 1e-4, 4e-4, True),
        ("blocks.1.mlp", "stable_rank", 200, 180, 10.0, 7.0, -3.0, 2e-4, 4e-4, True),
        ("embed", "stable_rank", 60, 40, 8.0, 8.2, 0.2, 0.2, 0.4, False),
        ("blocks.0.mlp", "participation_ratio", 220, 200, 4.5, 7.0, 2.5, 1e-3, 3e-3, True),
    ]
    columns = ["layer", "metric", "step", "prev_step", "value_before", "value_after"]
    columns += ["delta", "p_value", "q_value", "significant"]
    jumps = pd.DataFrame(rows, columns=columns)
    return Results(steps=STEPS, layers=LAYERS, metrics=metrics, jumps=jumps)


@pytest.fixture
def res() -> Results:
    return _results()


def _curves(fig) -> dict[str, np.ndarray]:
    ax = fig.axes[0]
    return {
        line.get_gid()[len("curve:") :]: line.get_ydata()
        for line in ax.get_lines()
        if (line.get_gid() or "").startswith("curve:")
    }


def _jump_points(ax) -> np.ndarray:
    sets = [c.get_offsets() for c in ax.collections if c.get_gid() == "ndt-jumps"]
    return np.concatenate(sets) if sets else np.empty((0, 2))


def _n_significant(jumps: pd.DataFrame, metric: str) -> int:
    return int(np.sum(jumps["significant"].to_numpy() & (jumps["metric"] == metric).to_numpy()))


def test_single_metric_has_one_line_per_layer_in_model_order(res):
    frame = res.to_frame()
    fig = plot_metric_curves(frame, "stable_rank", jumps=res.jumps)
    curves = _curves(fig)
    assert list(curves) == LAYERS
    for i, layer in enumerate(LAYERS):
        np.testing.assert_allclose(curves[layer], res.metrics["stable_rank"][:, i])
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[: len(LAYERS)] == LAYERS


def test_single_metric_marks_each_significant_jump_on_its_curve(res):
    fig = plot_metric_curves(res.to_frame(), "stable_rank", jumps=res.jumps)
    points = _jump_points(fig.axes[0])
    assert len(points) == _n_significant(res.jumps, "stable_rank") == 2
    column = list(STEPS).index(200)
    expected = sorted(res.metrics["stable_rank"][column, [1, 2]])
    np.testing.assert_allclose(sorted(points[:, 1]), expected)
    np.testing.assert_array_equal(points[:, 0], [200, 200])


def test_layer_globs_select_in_model_order(res):
    # ndt track's rule: `*` stays within one dotted level, `**` crosses levels.
    fig = plot_metric_curves(res.to_frame(), "participation_ratio", ["head", "blocks.**"])
    assert list(_curves(fig)) == ["blocks.0.mlp", "blocks.1.mlp", "head"]
    fig = plot_metric_curves(res.to_frame(), "participation_ratio", ["blocks.*.mlp"])
    assert list(_curves(fig)) == ["blocks.0.mlp", "blocks.1.mlp"]
    with pytest.raises(NdtError, match="matches no layer; the layers are embed"):
        plot_metric_curves(res.to_frame(), "stable_rank", "decoder.*")


def test_unknown_metric_lists_those_present(res):
    with pytest.raises(NdtError, match="these results have stable_rank, participation_ratio"):
        plot_metric_curves(res.to_frame(), "effective_rank")


def test_tracker_dict_form_draws_the_same_curves(res):
    frame = res.to_frame()
    per_layer = {layer: frame[frame.layer == layer].drop(columns="layer") for layer in LAYERS}
    for part in per_layer.values():
        part["loss"] = np.linspace(2, 0.1, len(part))
    fig = plot_metric_curves(per_layer, "stable_rank", show_loss=True)
    curves = _curves(fig)
    assert list(curves) == LAYERS
    np.testing.assert_allclose(curves["head"], res.metrics["stable_rank"][:, 3])
    assert len(fig.axes) == 2  # the loss sits on its own right-hand axis


def test_plot_jump_curves_accepts_jump_records_and_writes_q(res):
    @dataclass
    class Jump:
        step: int
        value_before: float
        value_after: float
        z_score: float

    frame = res.to_frame()
    head = frame[frame.layer == "head"].drop(columns="layer")
    fig = plot_jump_curves(
        head, [Jump(100, 1.0, 2.0, 4.0), Jump(300, 2.0, 1.0, 3.5)], "stable_rank"
    )
    ax = fig.axes[0]
    assert len(_jump_points(ax)) == 2
    assert len([p for p in ax.patches if p.get_gid() == "ndt-jump-interval"]) == 2

    fig = plot_jump_curves(frame, res.jumps, "stable_rank")
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == ["q=0.0004", "q=0.0004"]


def test_phases_are_one_more_than_distinct_jump_steps(res):
    fig = plot_phase_curves(res.to_frame(), "stable_rank", res.jumps)
    phases = [p for p in fig.axes[0].patches if p.get_gid() == "ndt-phase"]
    assert len(phases) == len({200}) + 1
    fig = plot_phase_curves(res.to_frame(), "stable_rank")
    assert len([p for p in fig.axes[0].patches if p.get_gid() == "ndt-phase"]) == 1


def test_grid_has_one_panel_per_metric(res):
    fig = plot_metric_grid(res.to_frame(), jumps=res.jumps)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible][0].startswith("stable rank")
    assert len(visible) == len(res.metrics)
    for ax, metric in zip(visible, res.metrics, strict=True):
        assert len([ln for ln in ax.get_lines() if ln.get_gid()]) == len(LAYERS)
        assert len(_jump_points(ax)) == _n_significant(res.jumps, metric)


def test_transitions_are_bands_on_every_panel(res):
    transitions = pd.DataFrame(
        {"rank": [1, 2], "prev_step": [180, 40], "step": [200, 80], "p_value": [1e-9, 1e-3]}
    )
    fig = plot_metric_grid(res.to_frame(), jumps=res.jumps, transitions=transitions)
    for ax in [ax for ax in fig.axes if ax.get_visible()]:
        bands = [p for p in ax.patches if p.get_gid() == "ndt-transitions"]
        spans = sorted((round(b.get_x()), round(b.get_x() + b.get_width())) for b in bands)
        assert spans == [(40, 80), (180, 200)]
    single = plot_metric_curves(res.to_frame(), transitions=transitions)
    assert len([p for p in single.axes[0].patches if p.get_gid() == "ndt-transitions"]) == 2
    texts = [t.get_text() for t in single.axes[0].texts]
    assert "#1" in texts and "#2" in texts


def test_layer_heatmap_image_is_the_metric_matrix(res):
    fig = plot_layer_heatmap(res.to_frame(), "stable_rank", jumps=res.jumps)
    image = fig.axes[0].get_images()[0].get_array()
    np.testing.assert_allclose(image, res.metrics["stable_rank"].T)
    assert len(_jump_points(fig.axes[0])) == 2
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == LAYERS


def test_correlation_heatmap_matches_numpy(res):
    fig = plot_metric_correlations(res.to_frame())
    image = fig.axes[0].get_images()[0].get_array()
    columns = np.stack([res.metrics[m].ravel() for m in res.metrics])
    np.testing.assert_allclose(image, np.corrcoef(columns), atol=1e-12)


def test_constant_metric_correlation_is_not_available(res):
    frame = res.to_frame().assign(nuclear_norm_ratio=1.0)
    fig = plot_metric_correlations(frame)
    assert "n/a" in [t.get_text() for t in fig.axes[0].texts]


def test_many_layers_get_a_depth_colour_bar():
    rng = np.random.default_rng(1)
    layers = [f"layers.{i}" for i in range(30)]
    results = Results(np.arange(10), layers, {"stable_rank": rng.uniform(1, 5, (10, 30))})
    fig = plot_metric_curves(results.to_frame(), "stable_rank")
    assert len(_curves(fig)) == 30
    assert fig.axes[0].get_legend() is None
    assert len(fig.axes) == 2  # the plot and its colour bar


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (np.arange(0, 1000, 10), False),
        (np.unique(np.geomspace(1, 10_000, 40).astype(int)), True),
        (np.r_[0, np.unique(np.geomspace(1, 10_000, 40).astype(int))], True),
        (
            np.r_[np.arange(0, 100, 10), np.arange(100, 1000, 100), np.arange(1000, 10001, 1000)],
            True,
        ),
        ([1, 10, 100], False),
        (np.r_[1, 2, 5, np.arange(10, 1001, 10)], False),  # a few early extras: still linear
    ],
)
def test_log_spacing_rule(steps, expected):
    assert use_log_x(steps) is expected


def test_auto_logx_sets_the_scale():
    steps = np.r_[0, np.unique(np.geomspace(1, 5000, 25).astype(int))]
    results = Results(steps, ["a"], {"stable_rank": np.ones((len(steps), 1))})
    fig = plot_metric_curves(results.to_frame(), "stable_rank")
    assert fig.axes[0].get_xscale() == "symlog"
    fig = plot_metric_curves(results.to_frame(), "stable_rank", logx=False)
    assert fig.axes[0].get_xscale() == "linear"


@pytest.mark.parametrize(
    ("suffix", "magic"), [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")]
)
def test_saved_files_have_their_format(res, tmp_path, suffix, magic):
    path = tmp_path / "sub" / f"fig{suffix}"
    plot_metric_curves(res.to_frame(), "stable_rank", jumps=res.jumps, save=path)
    data = path.read_bytes()
    assert data.startswith(magic)
    assert len(data) > 10_000


def test_save_refuses_other_formats_and_unwritable_paths(res, tmp_path):
    fig = plot_metric_curves(res.to_frame(), "stable_rank")
    with pytest.raises(NdtError, match=r"use a \.png, \.svg or \.pdf"):
        save_figure(fig, tmp_path / "fig.jpg")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NdtError, match="cannot write"):
        save_figure(fig, blocker / "fig.png")


def test_missing_matplotlib_names_the_install_command(res, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(NdtError, match="install it with pip install matplotlib"):
        plot_metric_curves(res.to_frame(), "stable_rank")


def test_tidy_frame_rejects_tables_without_steps():
    with pytest.raises(NdtError, match="no 'step' column"):
        tidy_frame(pd.DataFrame({"layer": ["a"], "stable_rank": [1.0]}))
    with pytest.raises(NdtError, match="no rows"):
        tidy_frame(pd.DataFrame({"step": [], "layer": [], "stable_rank": []}))


def test_run_name_prefers_the_checkpoint_folder():
    assert run_name(Path("out/results.h5"), "runs/digits-mlp/ckpts") == "digits-mlp"
    assert run_name(Path("out/results.h5"), "runs/seed3") == "seed3"
    assert run_name(Path("out/mlp-run.h5")) == "mlp-run"


def test_multi_layer_figures_do_not_share_the_reference_apis_names():
    import ndt.visualization as visualization
    from ndt.visualization import curves, heatmaps

    for module, name in [(curves, "plot_single_metric"), (curves, "plot_phases"),
                         (curves, "plot_jumps"), (heatmaps, "plot_correlation_heatmap")]:  # fmt: skip
        assert not hasattr(module, name)
        assert getattr(visualization, name).__module__ == "ndt.visualization.plots"
