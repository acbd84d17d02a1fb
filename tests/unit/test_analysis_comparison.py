import json

import numpy as np
import pytest
import torch
from float64_reference import reference_metrics
from torch import nn

from ndt.analysis import (
    CompareSettings,
    Phase2AnalyzerBase,
    compare_activations,
    compare_layer,
    layer_record,
    record_to_dict,
    subsample_rows,
)


def test_metrics_same_code_as_track_and_ranking():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    before = {"same": x, "moved": x}
    after = {"same": x * 2, "moved": rng.normal(size=(64, 8)).astype(np.float32)}
    out = compare_activations(before, after, labels=np.arange(64) % 2)
    assert [c.layer for c in out] == ["moved", "same"]
    same = out[1]
    assert same.cka == pytest.approx(1.0) and same.change_score == pytest.approx(0.0, abs=1e-12)
    expected = reference_metrics(x.astype(np.float64) * 2)
    for name, value in expected.items():
        assert same.metrics_after[name] == pytest.approx(value, rel=1e-9), name
    assert same.probe_before is not None and same.subsample is None
    json.dumps(record_to_dict(layer_record(out[0])))


def test_tokens_repeat_labels_and_subsample_is_stated():
    acts = torch.randn(30, 4, 3, generator=torch.Generator().manual_seed(0))
    settings = CompareSettings(max_rows=50, seed=7, n_clusters=2)
    c = compare_layer("tok", acts, acts + 1, labels=torch.arange(30) % 3, settings=settings)
    assert c.n_rows == 120 and c.n_features == 3
    assert c.subsample is not None and c.subsample.n_rows_used == 50 and c.subsample.seed == 7
    assert c.row_labels.shape == (50,)
    keep, _ = subsample_rows(120, 3, max_rows=50, seed=7)
    np.testing.assert_array_equal(c.row_labels, np.repeat(np.arange(30) % 3, 4)[keep])
    subsample = record_to_dict(layer_record(c))["subsample"]
    assert subsample == {"n_rows_total": 120, "n_rows_used": 50, "seed": 7}


def test_subsample_respects_cell_limit():
    keep, info = subsample_rows(1000, 100, max_rows=10_000, max_cells=20_000, seed=0)
    assert info.n_rows_used == 200 and len(np.unique(keep)) == 200
    assert subsample_rows(10, 10) == (None, None)


def test_phase2_analyzer_base():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3))
    analyzer = Phase2AnalyzerBase(model, device="cpu")
    analyzer.register_activation_hooks()
    acts = analyzer.capture_activations(torch.randn(20, 5))
    dims = analyzer.analyze_dimensionality(acts)
    assert list(dims) == ["0", "2"]
    assert dims["2"].shape == (20, 3)
    reference = reference_metrics(acts["0"].double().numpy())["stable_rank"]
    assert dims["0"].stable_rank == pytest.approx(reference, rel=1e-9)
    analyzer.cleanup()
    assert all(not m._forward_hooks for m in model.modules())


def test_compare_uses_the_recorded_definitions():
    rng = np.random.default_rng(5)
    before, after = rng.normal(size=(40, 6)) + 1.0, rng.normal(size=(40, 6)) * 3 + 2.0
    settings = CompareSettings(center=False, definitions="ndtracker")
    out = compare_layer("fc", before, after, settings=settings)
    s = np.linalg.svd(after, compute_uv=False)
    assert out.metrics_after["participation_ratio"] == pytest.approx(
        s.sum() ** 2 / (s**2).sum(), rel=1e-9
    )
