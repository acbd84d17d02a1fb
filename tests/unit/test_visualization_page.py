"""Tests of the HTML page's data and of the optional plotly figure."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pandas as pd
import pytest

from ndt.errors import NdtError
from ndt.io.store import Results
from ndt.visualization.page import page_data, render_page, write_html_report

LAYERS = ["conv1", "conv2", "fc</script><b>"]  # the last name tries to break out of <script>


def _results() -> Results:
    rng = np.random.default_rng(0)
    steps = np.arange(0, 100, 10)
    stable = rng.uniform(1, 5, (len(steps), len(LAYERS)))
    stable[3, 1] = np.nan
    jumps = pd.DataFrame(
        {
            "layer": ["conv2"],
            "metric": ["stable_rank"],
            "step": [50],
            "prev_step": [40],
            "value_before": [1.0],
            "value_after": [4.0],
            "delta": [3.0],
            "p_value": [1e-4],
            "q_value": [2e-4],
            "methods": ["zscore"],
            "significant": [True],
        }
    )
    metrics = {"stable_rank": stable, "participation_ratio": stable**0.5}
    return Results(steps=steps, layers=LAYERS, metrics=metrics, jumps=jumps)


def test_page_data_holds_every_curve_value():
    res = _results()
    data = page_data(res.to_frame(), jumps=res.jumps, run_name="run")
    assert data["layers"] == LAYERS
    assert list(data["metrics"]) == ["stable_rank", "participation_ratio"]
    values = np.array(data["metrics"]["stable_rank"]["values"], dtype=float)  # None -> nan
    np.testing.assert_allclose(values, res.metrics["stable_rank"].T, rtol=1e-6)
    assert data["metrics"]["stable_rank"]["values"][1][3] is None
    assert data["jumps"][0]["q_value"] == pytest.approx(2e-4)
    assert data["jumps"][0]["significant"] is True


def test_page_data_carries_the_transitions():
    res = _results()
    transitions = pd.DataFrame(
        {"rank": [1], "prev_step": [180], "step": [200], "p_value": [1e-9], "n_curves": [2],
         "layers": ["blocks.0.mlp,blocks.1.mlp"], "strongest": ["blocks.0.mlp stable_rank 9→14"]}
    )  # fmt: skip
    data = page_data(res.to_frame(), jumps=res.jumps, transitions=transitions)
    assert data["transitions"] == [
        {"rank": 1, "prev_step": 180, "step": 200, "p_value": 1e-9, "n_curves": 2,
         "layers": "blocks.0.mlp,blocks.1.mlp", "strongest": "blocks.0.mlp stable_rank 9→14"}
    ]  # fmt: skip
    assert page_data(res.to_frame())["transitions"] == []


def test_page_embeds_parseable_json_that_cannot_close_the_script(tmp_path):
    res = _results()
    path = write_html_report(res.to_frame(), tmp_path / "r.html", jumps=res.jumps, run_name="r")
    text = path.read_text()
    assert text.count("</script>") == 2  # the data block and the code block, nothing more
    payload = re.search(r'<script id="ndt-data" type="application/json">(.*?)</script>', text)
    data = json.loads(payload.group(1))
    assert data["layers"][2] == "fc</script><b>"
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text


def test_render_page_escapes_the_title():
    data = page_data(_results().to_frame(), run_name="<i>run</i>")
    assert "<title>&lt;i&gt;run&lt;/i&gt;" in render_page(data)


def test_unwritable_page_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NdtError, match="cannot write"):
        write_html_report(_results().to_frame(), blocker / "r.html")


def test_interactive_plot_has_a_trace_per_layer_and_metric():
    pytest.importorskip("plotly")
    from ndt.visualization.interactive import create_results_plot

    res = _results()
    fig = create_results_plot(res.to_frame(), jumps=res.jumps)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == len(LAYERS) * len(res.metrics)
    markers = [t for t in fig.data if t.mode == "markers"]
    assert len(markers) == 1 and len(markers[0].x) == 1
    assert "q = 0.0002" in markers[0].text[0]


def test_interactive_plot_without_plotly_names_the_extra(monkeypatch):
    from ndt.visualization.interactive import create_results_plot

    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    with pytest.raises(NdtError, match=r"pip install 'ndt-replay\[interactive\]'"):
        create_results_plot(_results().to_frame())
