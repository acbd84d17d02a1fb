"""`ndt compare`'s three outputs render one record: every number of the JSON is shown, written
to four significant digits, in the terminal, the Markdown and the HTML report, in the right
layer's section; and the record's numbers hold against numpy and scikit-learn run here on
the saved activations (fixtures/digits-mlp, steps 34 and 55)."""

import html
import io
import json
import math
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from rich.console import Console
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from ndt.analysis.compare_record import record_to_dict
from ndt.replay.compare import compare_run
from ndt.replay.track import track
from ndt.visualization.compare_layout import compare_layout
from ndt.visualization.compare_report import write_report
from ndt_cli._compare_terminal import compare_terminal
from ndt_cli.main import app

FIXTURE = Path(__file__).parents[2] / "fixtures" / "digits-mlp"
STEP = 55  # compares 34 with 55


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    track(FIXTURE / "ckpts", out=root / "r.h5", device="cpu")
    record = compare_run(root / "r.h5", step=STEP, device="cpu", save_activations=root / "a.h5")
    return root, record


def _token(value):
    """How the outputs write a JSON number: integers in full, floats to 4 significant digits."""
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def _numbers(node, path=()):
    """(path, value) of every number in a JSON document (booleans and nulls left out)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _numbers(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _numbers(value, (*path, i))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path, node


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]\d+)?(?!\w|\.\d)")


def _sections(text, headings):
    """`text` cut at each heading (in order): the part before the first, then one per layer."""
    cuts, start = [], 0
    for heading in headings:
        start = text.index(heading, start)
        cuts.append(start)
    bounds = [0, *cuts, len(text)]
    return [set(_NUMBER.findall(text[a:b])) for a, b in zip(bounds, bounds[1:], strict=False)]


def _check_every_number_shown(doc, text, headings, output="terminal"):
    header, *layers = _sections(text, headings)
    top = {k: v for k, v in doc.items() if k != "layers"}
    checked = 0
    for part, tokens in [(top, header), *zip(doc["layers"], layers, strict=True)]:
        for path, value in _numbers(part):
            shown = _token(value)
            assert shown in tokens, f"{output}: {path} = {value} not shown as {shown}"
            checked += 1
    return checked


def test_json_terminal_and_report_show_the_same_numbers(compared, tmp_path):
    root, record = compared
    doc = record_to_dict(record)
    layers = [c["layer"] for c in doc["layers"]]
    assert layers and doc["layers"][0]["linear_probe"] is not None
    console = Console(file=io.StringIO(), width=100)
    console.print(compare_terminal(compare_layout(record)), soft_wrap=True)
    terminal = console.file.getvalue()
    write_report(record, tmp_path / "rep")
    markdown = (tmp_path / "rep" / "report.md").read_text()
    page = html.unescape(re.sub(r"<[^>]+>", " ", (tmp_path / "rep" / "report.html").read_text()))
    for output, text, marks in (
        ("terminal", terminal, [f" {rank}. {name} " for rank, name in enumerate(layers, 1)]),
        ("report.md", markdown, [f"## {rank}. {name}\n" for rank, name in enumerate(layers, 1)]),
        ("report.html", page, [f" {rank}. {name} " for rank, name in enumerate(layers, 1)]),
    ):
        checked = _check_every_number_shown(doc, text, marks, output)
    # Per layer: 12 metric values, 9 neuron numbers + 6 per listed neuron, 4 series of PCA
    # components and 2 scalars, cluster sizes and contingency, 8 probe numbers, and more.
    assert checked > 4 * (12 + 9 + 6 * 10 + 5 * 10 + 3 * 5 * 2 + 8)


def test_principal_angles_of_a_layer_no_wider_than_k_are_not_ranked(compared):
    """digits-mlp's logits are 10 wide, as many as the PCA components compared: both
    subspaces are the whole space, so the angles are 0 by construction and not shown as a
    finding."""
    _, record = compared
    layout = compare_layout(record)
    by_layer = {row[1]: row for row in layout.ranking.rows}
    for rank, c in enumerate(record.layers):
        whole = c.n_features <= c.pca.n_components
        shown = by_layer[c.layer][3]
        lines = " ".join(layout.layers[rank].lines)
        if whole:
            assert max(c.pca.principal_angles_deg) < 1e-6  # the true angles: 0
            assert shown == "n/a" and "the layer's whole width" in lines
        else:
            assert shown == f"{max(c.pca.principal_angles_deg):.4g}"
            assert "whole width" not in lines
    assert any(c.n_features <= c.pca.n_components for c in record.layers)
    assert any(c.n_features > c.pca.n_components for c in record.layers)


def test_narrow_terminal_folds_layer_names_instead_of_cutting_them():
    from ndt.visualization.compare_layout import TextTable
    from ndt_cli._compare_terminal import _table

    names = ["bert.encoder.layer.0.attention.output", "bert.encoder.layer.1.attention.output"]
    table = TextTable("ranking", ("#", "layer", "1 - CKA", "Δ stable rank"),
                      tuple((str(i), n, "0.7383", "-1.234") for i, n in enumerate(names, 1)))  # fmt: skip
    console = Console(file=io.StringIO(), width=40)
    console.print(_table(table))
    text = console.file.getvalue()
    assert "…" not in text
    # Read the layer column back: the second cell of each body line, joined per row.
    cells = [line.split("│")[2].strip() for line in text.splitlines() if line.count("│") == 5]
    joined = "".join(cells)
    assert joined == "".join(names)


def test_the_command_writes_the_record_of_compare_run(compared, tmp_path):
    root, record = compared
    result = CliRunner().invoke(
        app, ["compare", "--results", str(root / "r.h5"), "--step", str(STEP), "--json",
              str(tmp_path / "c.json")],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    written = json.loads((tmp_path / "c.json").read_text())
    expected = json.loads(json.dumps(record_to_dict(record)))
    assert {k: v for k, v in written.items() if k != "activations"} == {
        k: v for k, v in expected.items() if k != "activations"
    }
    # The terminal at the CLI's own width (80 columns here) still shows every number.
    names = [c["layer"] for c in written["layers"]]
    marks = [f" {rank}. {name} " for rank, name in enumerate(names, 1)]
    _check_every_number_shown(written, result.stdout, marks)


def test_record_numbers_against_numpy_and_sklearn(compared):
    root, record = compared
    k = record.settings.n_components
    with h5py.File(root / "a.h5") as f:
        labels = f["labels"][()]
        saved = {
            c.layer: (
                f[f"step_{record.before.step}"][c.layer][()].astype(np.float64),
                f[f"step_{record.after.step}"][c.layer][()].astype(np.float64),
            )
            for c in record.layers
        }
    for c in record.layers:
        a, b = saved[c.layer]
        for mine, x in ((c.pca.explained_variance_ratio_before, a),
                        (c.pca.explained_variance_ratio_after, b)):  # fmt: skip
            s = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2
            np.testing.assert_allclose(mine, (s / s.sum())[: len(mine)], rtol=1e-6, atol=1e-12)
        joint = PCA(min(k, a.shape[1])).fit(np.vstack([a, b]))
        np.testing.assert_allclose(
            c.pca.joint_explained_variance_ratio, joint.explained_variance_ratio_, rtol=1e-6
        )
        spread = (a.var(0, ddof=1).sum() + b.var(0, ddof=1).sum()) / 2
        distance = np.linalg.norm(b.mean(0) - a.mean(0)) / math.sqrt(spread)
        assert c.pca.centroid_distance == pytest.approx(distance, rel=1e-9)
        delta = b.mean(0) - a.mean(0)
        assert c.neurons.max_abs_delta_mean == pytest.approx(np.abs(delta).max(), rel=1e-9)
        assert c.neurons.mean_abs_delta_mean == pytest.approx(np.abs(delta).mean(), rel=1e-9)
        order = np.argsort(-np.abs(delta), kind="stable")[: record.settings.top_k]
        assert [t.index for t in c.neurons.top_changes] == order.tolist()
        for t in c.neurons.top_changes:
            assert t.delta_mean == pytest.approx(delta[t.index], rel=1e-9)
            assert t.sparsity_after == (b[:, t.index] == 0).mean()
        folds = StratifiedKFold(5, shuffle=True, random_state=record.settings.seed)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        for side, x in ((c.linear_probe.before, a), (c.linear_probe.after, b)):
            scores = cross_val_score(model, x, labels, cv=folds)
            assert side.mean == pytest.approx(scores.mean(), abs=1e-9)
            assert side.std == pytest.approx(scores.std(), abs=1e-9)
            assert side.chance == pytest.approx(np.bincount(labels).max() / len(labels))


def _keys(node, under=""):
    if isinstance(node, dict):
        for key, value in node.items():
            # A metric's name is data, not a key of the schema ("<metric>").
            yield from ([] if under == "metrics" else [key])
            yield from _keys(value, key)
    elif isinstance(node, list):
        for value in node:
            yield from _keys(value, under)


def test_every_json_key_is_in_the_documented_schema(compared):
    _, record = compared
    page = (Path(__file__).parents[2] / "docs" / "commands" / "compare.md").read_text()
    schema = page.split("## JSON schema", 1)[1].split("```", 2)[1]
    documented = set(re.findall(r'"(\w+)":', schema))
    doc = record_to_dict(record)
    assert set(_keys(doc)) <= documented
    assert set(doc["layers"][0]["metrics"]) == set(record.settings.metrics)
