"""The compare record and its JSON form (`record_to_dict`), and the text layout of it."""

import json
import math
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from ndt.analysis import CompareSettings, compare_layer
from ndt.analysis.compare_record import (
    CheckpointRecord,
    CompareRecord,
    LayerRecord,
    ProbeFileRecord,
    layer_record,
    record_to_dict,
)
from ndt.visualization.compare_layout import compare_layout, compare_notes, number

SETTINGS = CompareSettings(n_clusters=3, n_components=4, top_k=3)


def _record(layers, *, note=None, labels_per_token=()):
    return CompareRecord(
        results=Path("runs") / "r.h5",
        before=CheckpointRecord(10, Path("ckpts") / "step_10.safetensors"),
        after=CheckpointRecord(20, Path("ckpts") / "step_20.safetensors"),
        chosen_by="--step 20",
        note=note,
        model="mlp {}",
        probe=ProbeFileRecord(Path("probe.safetensors"), "ab" * 32, 60, True),
        settings=SETTINGS,
        ranked_by="1 - linear CKA",
        tokens="all",
        labels_per_token=tuple(labels_per_token),
        activations=None,
        layers=tuple(layers),
    )


@pytest.fixture(scope="module")
def layers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 6))
    y = np.maximum(x @ rng.normal(size=(6, 6)), 0)  # a ReLU: exact zeros
    labelled = compare_layer("fc", x, y, labels=np.arange(60) % 3, settings=SETTINGS)
    unlabelled = compare_layer("relu", y, y + 1.0, settings=SETTINGS)
    return labelled, unlabelled, (x, y)


def test_json_is_the_field_tree_with_direct_values(layers):
    labelled, _, (x, y) = layers
    doc = record_to_dict(layer_record(labelled))
    assert list(doc) == [f.name for f in fields(LayerRecord) if f.name != "figures"]
    # Counted here, not by the code under test: the largest |delta mean| and dead neurons.
    delta = y.mean(0) - x.mean(0)
    assert doc["neurons"]["max_abs_delta_mean"] == pytest.approx(np.abs(delta).max())
    assert doc["neurons"]["top_changes"][0]["index"] == int(np.argmax(np.abs(delta)))
    assert doc["cka"] + doc["change_score"] == pytest.approx(1.0)
    assert doc["shape"] == [60, 6] and doc["subsample"] is None
    assert sum(doc["clusters"]["before"]["sizes"]) == 60
    assert np.sum(doc["clusters"]["joint"]["contingency"], axis=0).tolist() == [60, 60]
    assert doc["neurons"]["n_dead_after"] == int(((y == 0).mean(0) > 0.9).sum())
    assert doc["linear_probe"]["before"]["n_splits"] == 5
    assert isinstance(doc["linear_probe"]["before"]["n_splits"], int)
    json.dumps(doc, allow_nan=False)


def test_nan_is_null_paths_are_strings_and_figures_stay_out(layers):
    labelled, unlabelled, _ = layers
    doc = record_to_dict(_record([layer_record(unlabelled), layer_record(labelled)]))
    assert doc["results"] == str(Path("runs") / "r.h5")
    assert doc["before"] == {"step": 10, "file": str(Path("ckpts") / "step_10.safetensors")}
    relu = doc["layers"][0]
    assert relu["linear_probe"] is None
    assert relu["clusters"]["before"]["purity"] is None  # NaN without labels
    assert "figures" not in relu
    assert doc["settings"]["metrics"] == list(SETTINGS.metrics)
    json.dumps(doc, allow_nan=False)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.123456, "0.1235"), (5, "5"), (204800000, "204800000"), (2.0, "2"), (6.86e-14, "6.86e-14"),
     (math.nan, "n/a"), (None, "n/a"), (True, "yes"), (-0.5, "-0.5")],
)  # fmt: skip
def test_number(value, text):
    assert number(value) == text


def test_layout_without_labels_says_n_a_and_lists_no_probe(layers):
    _, unlabelled, _ = layers
    layout = compare_layout(_record([layer_record(unlabelled)]))
    (section,) = layout.layers
    quantities = {row[0]: row[1:] for row in section.tables[0].rows}
    assert quantities["cluster purity (own-step KMeans)"] == ("n/a", "n/a")
    assert not [name for name in quantities if name.startswith("linear-probe")]
    # Every neuron and component the record holds has its row.
    titles = [t.title for t in section.tables]
    pca = section.tables[titles.index("Principal components (angles ascending)")]
    assert len(pca.rows) == unlabelled.pca.n_components
    top = section.tables[titles.index("Largest changes of mean activation")]
    assert [int(row[0]) for row in top.rows] == [t.index for t in unlabelled.neurons.top_changes]


def test_notes_name_the_token_layers(layers):
    labelled, _, _ = layers
    record = _record([layer_record(labelled)], note="no significant transition",
                     labels_per_token=["blocks.0"])  # fmt: skip
    notes = compare_notes(record)
    assert notes[0] == "no significant transition"
    assert "rows of blocks.0 are tokens (--tokens all)" in notes[1]
    assert compare_layout(record).notes == notes
