"""The metric registry (ndt/core/metrics.py) is the one list of metrics: the estimators, the
independent float64 reference, the docs table, the plots' labels and the jumps' resolution
all follow it, and its metadata loads without numpy or torch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from float64_reference import reference_metrics

from ndt.core import estimators
from ndt.core.metrics import DEFAULT_METRICS, REGISTRY, Metric
from ndt.visualization._style import METRIC_LABELS

ROOT = Path(__file__).resolve().parents[2]


def test_every_metric_has_its_function_and_its_reference_formula() -> None:
    assert list(estimators.METRICS) == list(REGISTRY) == list(DEFAULT_METRICS)
    matrix = np.random.default_rng(0).normal(size=(30, 8))
    assert list(reference_metrics(matrix)) == list(REGISTRY)
    assert all(isinstance(m, Metric) and m.name == name for name, m in REGISTRY.items())


def test_declared_integer_metrics_are_integers_on_the_reference() -> None:
    """`integer` is checked against the float64 reference, not ndt's code: on random
    matrices, a declared integer metric is always whole, the others are not."""
    rng = np.random.default_rng(1)
    values = [reference_metrics(rng.normal(size=(40, 12)) * rng.uniform(0.1, 3, 12))
              for _ in range(20)]  # fmt: skip
    for name, metric in REGISTRY.items():
        whole = [float(v[name]).is_integer() for v in values]
        if metric.integer:
            assert all(whole), name
        elif name != "dormant_fraction":  # 0 dormant units on a dense random matrix
            assert not any(whole), name


def _docs_table() -> list[list[str]]:
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    block = text.split('<a id="registry"></a>\n', 1)[1].split("\n\n", 1)[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in block.splitlines()]
    assert rows[0] == ["metric", "label (plots)", "unit", "values"]
    return rows[2:]


def test_docs_table_lists_exactly_the_registry() -> None:
    want = [[f"`{m.name}`", m.label, m.unit, "integer" if m.integer else "real"]
            for m in REGISTRY.values()]  # fmt: skip
    assert _docs_table() == want


def test_docs_have_one_section_per_metric() -> None:
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    sections = re.findall(r"^## ([a-z0-9_]+)$", text, flags=re.MULTILINE)
    assert sections == list(REGISTRY)


def test_plot_labels_come_from_the_registry() -> None:
    for name, metric in REGISTRY.items():
        assert METRIC_LABELS[name] == f"{metric.label}  ({metric.unit})"


def test_metadata_loads_without_heavy_libraries() -> None:
    code = (
        "import json, sys; import ndt.core.metrics; "
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    loaded = set(json.loads(done.stdout))
    assert not loaded & {"numpy", "torch", "pandas", "h5py", "scipy", "matplotlib"}


@pytest.mark.parametrize("name", [n for n, m in REGISTRY.items() if m.integer])
def test_integer_metrics_get_whole_number_ticks(name: str, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import pandas as pd

    from ndt.visualization.curves import plot_metric_curves

    frame = pd.DataFrame(
        {"step": np.repeat(np.arange(6) * 10, 2), "layer": ["a", "b"] * 6,
         name: [3.0, 4.0, 3.0, 5.0, 4.0, 5.0, 4.0, 6.0, 5.0, 6.0, 5.0, 7.0]}
    )  # fmt: skip
    figure = plot_metric_curves(frame, name)
    ticks = figure.axes[0].get_yticks()
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)
