"""The `ndt plot --html` page in a real headless Chromium, opened from disk with no network.

Needs Debian's Chromium (`apt-get install chromium`, or NDT_CHROMIUM=/path/to/chrome) and
the Playwright Python package (`pip install playwright`; its own browser download is not
used). The tests skip, saying which is missing, where either is absent.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ndt.io.store import Results
from ndt.visualization.page import write_html_report

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the Playwright package is not installed (pip install playwright)"
)
CHROMIUM = (
    os.environ.get("NDT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)
if not CHROMIUM:
    pytest.skip(
        "no Chromium found (apt-get install chromium, or set NDT_CHROMIUM)",
        allow_module_level=True,
    )

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
LAYERS = ["embed", "blocks.0.attn", "blocks.0.mlp", "blocks.1.attn", "blocks.1.mlp", "head"]
STEPS = np.r_[0, np.unique(np.geomspace(1, 2000, 25).astype(int))]


def _results() -> Results:
    rng = np.random.default_rng(0)
    shape = (len(STEPS), len(LAYERS))
    stable = 5 + np.arange(len(LAYERS)) + 4.0 * (STEPS >= 100)[:, None] + rng.normal(0, 0.2, shape)
    metrics = {"stable_rank": stable, "participation_ratio": rng.uniform(1, 3, shape)}
    k = int(np.searchsorted(STEPS, 100))
    jumps = pd.DataFrame(
        {
            "layer": ["blocks.0.mlp", "head", "embed"],
            "metric": ["stable_rank", "stable_rank", "participation_ratio"],
            "step": [int(STEPS[k])] * 3,
            "prev_step": [int(STEPS[k - 1])] * 3,
            "value_before": [stable[k - 1, 2], stable[k - 1, 5], 1.0],
            "value_after": [stable[k, 2], stable[k, 5], 2.0],
            "delta": [4.0, 4.0, 1.0],
            "p_value": [1e-5, 2e-5, 0.04],
            "q_value": [3e-5, 4e-5, 0.08],
            "methods": ["zscore+pelt"] * 3,
            "significant": [True, True, False],
        }
    )
    return Results(steps=STEPS, layers=LAYERS, metrics=metrics, jumps=jumps)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, tmp_path: Path):
    res = _results()
    k = int(np.searchsorted(STEPS, 100))
    transitions = pd.DataFrame(
        {"rank": [1], "prev_step": [int(STEPS[k - 1])], "step": [int(STEPS[k])],
         "p_value": [1e-9], "n_curves": [2], "layers": ["blocks.0.mlp,head"],
         "strongest": ["blocks.0.mlp stable_rank 7→11"]}
    )  # fmt: skip
    path = write_html_report(res.to_frame(), tmp_path / "report.html", jumps=res.jumps,
                             transitions=transitions, run_name="synthetic")  # fmt: skip
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    remote: list[str] = []

    def block_network(route):
        if route.request.url.startswith("file:"):
            return route.continue_()
        remote.append(route.request.url)
        return route.abort()

    page.route("**/*", block_network)
    page.goto(path.as_uri())
    yield page
    assert problems == [], problems
    assert remote == [], f"the page asked the network for {remote}"
    context.close()


def _trace_paths(page) -> dict[str, str]:
    return page.eval_on_selector_all(
        "#plot path.trace",
        "els => Object.fromEntries(els.map(e => [e.dataset.layer, e.getAttribute('d')]))",
    )


def test_page_shows_one_trace_per_layer(page):
    traces = _trace_paths(page)
    assert list(traces) == LAYERS
    # Every checkpoint is a vertex: one M plus len(STEPS) - 1 L commands per trace.
    assert all(d.count("L") == len(STEPS) - 1 for d in traces.values())
    assert page.locator("#plot path.jump").count() == 2  # significant stable_rank jumps
    assert page.locator("#jumps tbody tr").count() == 2
    assert page.locator("#logx").is_checked()  # log-spaced steps switch it on


def test_transitions_are_numbered_bands_behind_every_metric(page):
    for metric in ("stable_rank", "participation_ratio"):
        page.select_option("#metric", metric)
        bands = page.locator("#plot rect.transition")
        assert bands.count() == 1
        assert page.text_content("#plot text.transition-label") == "#1"
        width = float(bands.first.get_attribute("width"))
        assert 2 <= width < 200  # one interval on a 1280-pixel-wide page


def test_switching_the_metric_changes_the_traces(page):
    before = _trace_paths(page)
    page.select_option("#metric", "participation_ratio")
    after = _trace_paths(page)
    assert list(after) == LAYERS
    assert all(after[layer] != before[layer] for layer in LAYERS)
    assert page.locator("#plot path.jump").count() == 0  # its one jump is not significant
    assert page.locator("#jumps tbody tr").count() == 1
    assert "participation ratio" in page.text_content("#plot")


def test_layer_filter_and_checkboxes(page):
    page.fill("#layer-filter", "blocks.*.mlp")
    assert list(_trace_paths(page)) == ["blocks.0.mlp", "blocks.1.mlp"]
    page.uncheck("#legend input[data-layer='blocks.1.mlp']")
    assert list(_trace_paths(page)) == ["blocks.0.mlp"]
    page.fill("#layer-filter", "")
    assert len(_trace_paths(page)) == len(LAYERS) - 1


def test_hover_shows_step_layer_value_and_jump_p_q(page, tmp_path):
    box = page.locator("#plot path.jump").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    tip = page.text_content("#tooltip")
    assert "p = 1e-5" in tip and "q = 3e-5" in tip
    head = page.locator("#plot path.trace[data-layer='head']").bounding_box()
    page.mouse.move(head["x"] + head["width"] - 2, head["y"] + head["height"] / 2)
    page.wait_for_timeout(50)
    tip = page.text_content("#tooltip")
    assert "step: " in tip and "stable_rank: " in tip
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    if os.environ.get("NDT_SCREENSHOT"):
        shutil.copy(tmp_path / "page.png", os.environ["NDT_SCREENSHOT"])
    assert (tmp_path / "page.png").stat().st_size > 10_000
