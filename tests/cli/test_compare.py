import dataclasses
import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from ndt.analysis import linear_cka
from ndt.io.checkpoints import save_checkpoint
from ndt.io.manifest import ModelSpec, write_manifest
from ndt.io.probe import save_probe
from ndt.io.store import read_results, write_jumps, write_results
from ndt.models.zoo import build_zoo_model
from ndt.replay.compare import compare_run
from ndt.replay.track import track
from ndt_cli.main import app

STEPS = list(range(0, 100, 10))
JUMP = 50
SPEC = ModelSpec("mlp", {"in_features": 8, "hidden": [16, 16], "n_classes": 3})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run whose weights drift slowly, except for a jump to other weights at step 50."""
    root = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    first, second = build_zoo_model("mlp", **SPEC.kwargs), build_zoo_model("mlp", **SPEC.kwargs)
    drift = {k: 0.01 * torch.randn_like(v) for k, v in first.state_dict().items()}
    model = build_zoo_model("mlp", **SPEC.kwargs)
    for step in STEPS:
        base = (first if step < JUMP else second).state_dict()
        model.load_state_dict({k: base[k] + drift[k] * step / 10 for k in base})
        save_checkpoint(model, root / "ckpts", step)
    inputs = torch.randn(90, 8, generator=torch.Generator().manual_seed(1))
    save_probe(root / "probe.safetensors", inputs, torch.arange(90) % 3)
    write_manifest(root / "ckpts", SPEC, root / "probe.safetensors")
    track(root / "ckpts", out=root / "results.h5", device="cpu")
    return root


def invoke(*args):
    return CliRunner().invoke(app, ["compare", *map(str, args)])


def test_step_around_jump_prints_steps_and_tables(run, tmp_path):
    res = invoke(
        "--results",
        run / "results.h5",
        "--step",
        JUMP,
        "--json",
        tmp_path / "c.json",
        "--save-activations",
        tmp_path / "acts.h5",
        "--clusters",
        3,
    )
    assert res.exit_code == 0, res.stderr
    assert "Before: step 40" in res.stdout and "After:  step 50" in res.stdout
    assert "ranked by 1 - linear CKA" in res.stdout
    doc = json.loads((tmp_path / "c.json").read_text())
    assert doc["before"]["step"] == 40 and doc["after"]["step"] == 50
    tracked = read_results(run / "results.h5")
    with h5py.File(tmp_path / "acts.h5") as f:
        labels = f["labels"][()]
        for layer in doc["layers"]:
            a, b = f["step_40"][layer["layer"]][()], f["step_50"][layer["layer"]][()]
            # Numbers a reader can check against the saved activations.
            assert layer["cka"] == pytest.approx(linear_cka(a, b), rel=1e-9)
            dead_b = ((a == 0).mean(0) > 0.9).sum()
            assert layer["neurons"]["n_dead_before"] == dead_b
            # Same code as track: the recorded curve at step 50.
            i, j = list(tracked.steps).index(50), tracked.layers.index(layer["layer"])
            for metric, values in layer["metrics"].items():
                expected = tracked.metrics[metric][i, j]
                assert values["after"] == pytest.approx(expected, rel=1e-6, nan_ok=True)
    assert labels.tolist() == (np.arange(90) % 3).tolist()
    assert doc["layers"][0]["linear_probe"]["before"]["n_splits"] == 5
    with h5py.File(tmp_path / "acts.h5") as f:
        for layer in doc["layers"]:
            a, b = f["step_40"][layer["layer"]][()], f["step_50"][layer["layer"]][()]
            _check_clusters(layer["clusters"], a, b, labels, k=3, seed=0)


def _kmeans(x, k, seed):
    x = StandardScaler().fit_transform(np.asarray(x, dtype=np.float64))
    return KMeans(k, random_state=seed, n_init=4).fit_predict(x)


def _purity(clusters, labels):
    return sum(np.bincount(labels[clusters == c]).max() for c in set(clusters)) / len(labels)


def _check_clusters(doc, before, after, labels, k, seed):
    """The JSON's cluster numbers against sklearn run here on the saved activations."""
    ref = {"before": _kmeans(before, k, seed), "after": _kmeans(after, k, seed)}
    for side, clusters in ref.items():
        assert doc[side]["sizes"] == np.bincount(clusters, minlength=k).tolist()
        assert doc[side]["purity"] == pytest.approx(_purity(clusters, labels))
        assert doc[side]["ari_vs_labels"] == pytest.approx(adjusted_rand_score(labels, clusters))
    ari = adjusted_rand_score(ref["before"], ref["after"])
    assert doc["ari_before_vs_after"] == pytest.approx(ari)
    joint = _kmeans(np.vstack([before, after]), k, seed)
    n = len(before)
    share = doc["joint"]["occupancy_min_share"]
    occupied = [c for c in range(k) if (joint[:n] == c).sum() >= share * (joint == c).sum()]
    assert doc["joint"]["phase_occupancy"] == pytest.approx(np.isin(joint[n:], occupied).mean())


@pytest.fixture(scope="module")
def translated_run(tmp_path_factory):
    """Two checkpoints equal but for the head's bias: the head's outputs are translated."""
    root = tmp_path_factory.mktemp("translated")
    torch.manual_seed(3)
    model = build_zoo_model("mlp", **SPEC.kwargs)
    save_checkpoint(model, root / "ckpts", 0)
    with torch.no_grad():
        model.head.bias += torch.tensor([40.0, -25.0, 60.0])
    save_checkpoint(model, root / "ckpts", 10)
    centers = 3 * torch.randn(3, 8, generator=torch.Generator().manual_seed(4))
    labels = torch.arange(90) % 3
    inputs = centers[labels] + torch.randn(90, 8, generator=torch.Generator().manual_seed(5))
    save_probe(root / "probe.safetensors", inputs, labels)
    write_manifest(root / "ckpts", SPEC, root / "probe.safetensors")
    track(root / "ckpts", out=root / "results.h5", device="cpu")
    return root


def test_translation_leaves_purity_and_ari_unchanged(translated_run, tmp_path):
    res = invoke(
        "--results",
        translated_run / "results.h5",
        "--before",
        0,
        "--after",
        10,
        "--json",
        tmp_path / "c.json",
        "--save-activations",
        tmp_path / "acts.h5",
        "--clusters",
        3,
    )
    assert res.exit_code == 0, res.stderr
    assert "phase occupancy" in res.stdout and "ARI between the two steps' partitions" in res.stdout
    layers = {
        layer["layer"]: layer for layer in json.loads((tmp_path / "c.json").read_text())["layers"]
    }
    with h5py.File(tmp_path / "acts.h5") as f:
        labels = f["labels"][()]
        a, b = f["step_0"]["head"][()], f["step_10"]["head"][()]
    np.testing.assert_allclose(b - a, np.broadcast_to([40.0, -25.0, 60.0], a.shape), atol=1e-4)
    head = layers["head"]["clusters"]
    _check_clusters(head, a, b, labels, k=3, seed=0)
    assert head["ari_before_vs_after"] == pytest.approx(1.0)
    assert head["after"]["purity"] == pytest.approx(head["before"]["purity"])
    assert head["after"]["ari_vs_labels"] == pytest.approx(head["before"]["ari_vs_labels"])
    assert head["before"]["purity"] > 0.8  # the classes are separate blobs; chance is 1/3
    assert head["joint"]["phase_occupancy"] == 0.0
    # The layers before the head did not move at all.
    assert layers["relu2"]["clusters"]["joint"]["phase_occupancy"] == 1.0


def test_change_larger_around_jump_than_far_from_it(run):
    near = compare_run(run / "results.h5", step=JUMP, device="cpu")
    far = compare_run(run / "results.h5", step=20, device="cpu")
    far_by_layer = {c.layer: c for c in far.layers}
    for a in near.layers:
        b = far_by_layer[a.layer]
        assert a.change_score > b.change_score + 0.1
        if a.n_features > a.pca.n_components:  # a full-width subspace cannot rotate
            assert a.pca.subspace_overlap < b.pca.subspace_overlap


def test_most_significant_jump_is_used(run, tmp_path):
    copy = tmp_path / "r.h5"
    write_results(copy, read_results(run / "results.h5"))
    jumps = __import__("pandas").DataFrame(
        {
            "layer": ["fc1", "fc2"],
            "metric": ["stable_rank"] * 2,
            "step": [30, 50],
            "q_value": [0.2, 0.001],
            "score": [1.0, 5.0],
        }
    )
    write_jumps(copy, jumps)
    report = compare_run(copy, device="cpu", layers=["fc1"])
    assert (report.before.step, report.after.step) == (40, 50)
    assert "most significant jump" in report.chosen_by
    assert [c.layer for c in report.layers] == ["fc1"]


def test_report_folder(run, tmp_path):
    res = invoke(
        "--results",
        run / "results.h5",
        "--before",
        20,
        "--after",
        60,
        "--window",
        0,
        "--report",
        tmp_path / "rep",
        "--layers",
        "relu*",
    )
    assert res.exit_code == 0, res.stderr
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3  # CKA + one per layer
    md = (tmp_path / "rep" / "report.md").read_text()
    for text in (md, page):
        assert "cluster purity (own-step KMeans)" in text and "phase occupancy" in text
    for name in re.findall(r"\]\((figures/[^)]+)\)", md):
        assert (tmp_path / "rep" / name).stat().st_size > 1000


def _error(res):
    assert res.exit_code == 1
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


def test_step_outside_range(run):
    line = _error(invoke("--results", run / "results.h5", "--step", 500))
    assert "0..90" in line
    assert "0..90" in _error(invoke("--results", run / "results.h5", "--step", 0))


def test_moved_checkpoints(run, tmp_path):
    moved = tmp_path / "moved"
    (run / "ckpts").rename(moved)
    try:
        line = _error(invoke("--results", run / "results.h5", "--step", 50))
        assert str(run / "ckpts") in line and "--ckpts" in line
        res = invoke("--results", run / "results.h5", "--step", 50, "--ckpts", moved)
        assert res.exit_code == 0, res.stderr
    finally:
        moved.rename(run / "ckpts")


def test_changed_probe(run, tmp_path):
    results = read_results(run / "results.h5")
    other = save_probe(tmp_path / "p.safetensors", torch.zeros(90, 8), torch.arange(90) % 3)
    changed = dataclasses.replace(
        results, provenance=dataclasses.replace(results.provenance, probe_path=str(other.path))
    )
    write_results(tmp_path / "r.h5", changed)
    line = _error(invoke("--results", tmp_path / "r.h5", "--step", 50))
    assert "changed since `ndt track`" in line


def test_results_without_provenance(run, tmp_path):
    results = read_results(run / "results.h5")
    results.provenance = None
    write_results(tmp_path / "r.h5", results)
    assert "no provenance" in _error(invoke("--results", tmp_path / "r.h5", "--step", 50))


def test_no_step_and_no_jumps(run):
    assert "ndt jumps" in _error(invoke("--results", run / "results.h5"))


TRANSITION = Path(__file__).parents[2] / "fixtures" / "digits-transition"


def test_induced_transition_fixture(tmp_path):
    info = json.loads((TRANSITION / "info.json").read_text())
    report = track(TRANSITION / "ckpts", out=tmp_path / "r.h5", device="cpu")
    steps = [int(s) for s in report.results.steps]
    known = int(info["transition_step"])
    # Late in training, far after the transition, consecutive checkpoints barely differ.
    assert known < steps[-3], "the transition should not be among the last checkpoints"
    # The checkpoint at `known` is the last one trained on five classes: the change shows in
    # the first checkpoint after it, which `--step known+1` compares with `known`.
    near = compare_run(tmp_path / "r.h5", step=known + 1, device="cpu")
    assert (near.before.step, near.after.step) == (known, steps[steps.index(known) + 1])
    away = compare_run(tmp_path / "r.h5", step=steps[-1], device="cpu")
    assert max(c.change_score for c in near.layers) > 10 * max(c.change_score for c in away.layers)
    # The representation moves at the switch (the after-rows leave the before-rows' joint
    # clusters) but each step keeps its class structure: per-step purity stays far above the
    # 0.1 of ten balanced classes. Joint clusters gave 0.10 after (issue 11, item 6).
    assert min(c.clusters.joint.phase_occupancy for c in near.layers) < 0.5
    for c in near.layers:
        assert c.clusters.after.purity > 0.3 and c.clusters.before.purity > 0.3


def test_no_step_takes_the_top_transition_of_ndt_jumps(tmp_path):
    """digits-transition: track, jumps, then compare with no step lands on the switch."""
    info = json.loads((TRANSITION / "info.json").read_text())
    path = tmp_path / "r.h5"
    track(TRANSITION / "ckpts", out=path, device="cpu")
    assert CliRunner().invoke(app, ["jumps", str(path)]).exit_code == 0
    result = invoke("--results", path, "--layers", "relu2", "--json", tmp_path / "c.json")
    assert result.exit_code == 0, result.stderr
    document = json.loads((tmp_path / "c.json").read_text())
    steps = info["steps"]
    switch = info["transition_step"]
    assert document["before"]["step"] == switch
    assert document["after"]["step"] == steps[steps.index(switch) + 1]
    assert document["chosen_by"].startswith("the top transition of `ndt jumps`")
    assert document["note"] is None and "Note:" not in result.stderr


def test_no_transition_says_so_and_compares_the_largest_change(run, tmp_path):
    copy = tmp_path / "r.h5"
    write_results(copy, read_results(run / "results.h5"))
    # The run's curves jump at step 50; put a random walk in their place (seeded; it has
    # no significant transition) so that `ndt jumps` finds none.
    results = read_results(copy)
    rng = np.random.default_rng(0)
    for name, values in results.metrics.items():
        results.metrics[name] = 1.0 + np.cumsum(rng.standard_normal(values.shape), axis=0)
    write_results(copy, results)
    assert CliRunner().invoke(app, ["jumps", str(copy)]).exit_code == 0
    stored = read_results(copy)
    assert stored.transitions is not None and stored.transitions.empty
    result = invoke("--results", copy, "--layers", "fc1")
    assert result.exit_code == 0, result.stderr
    first, last = json.loads(stored.jump_settings["largest_change"])[:2]
    assert (
        f"Note: no significant transition; comparing the largest change, step {first}→{last}."
        in result.stderr
    )
    assert f"Before: step {first}" in result.stdout and f"After:  step {last}" in result.stdout


def test_a_moved_probe_and_model_are_given_on_the_command_line(run, tmp_path):
    moved = tmp_path / "elsewhere" / "probe.safetensors"
    moved.parent.mkdir()
    moved.write_bytes((run / "probe.safetensors").read_bytes())
    copy = tmp_path / "r.h5"
    results = read_results(run / "results.h5")
    results.provenance = dataclasses.replace(
        results.provenance, probe_path=str(tmp_path / "gone.safetensors"), model="gone.py:build"
    )
    write_results(copy, results)
    kwargs = json.dumps(SPEC.kwargs)
    gone = invoke("--results", copy, "--step", JUMP, "--layers", "fc1", "--probe", moved)
    assert gone.exit_code == 1 and gone.stderr.count("\n") == 1
    assert (
        f"Error: model file gone.py recorded in {copy} does not exist; restore it or pass "
        "--model FILE.py:factory" in " ".join(gone.stderr.split())
    )
    refused = invoke("--results", copy, "--step", JUMP, "--layers", "fc1", "--model", "mlp",
                     "--model-kwargs", kwargs)  # fmt: skip
    assert refused.exit_code == 1 and "--probe FILE" in refused.stderr
    result = invoke("--results", copy, "--step", JUMP, "--layers", "fc1", "--probe", moved,
                    "--model", "mlp", "--model-kwargs", kwargs)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert f"After:  step {JUMP}" in result.stdout
    other = tmp_path / "other.safetensors"
    save_probe(other, torch.randn(90, 8), torch.arange(90) % 3)
    changed = invoke("--results", copy, "--step", JUMP, "--probe", other, "--model", "mlp",
                     "--model-kwargs", kwargs)  # fmt: skip
    assert changed.exit_code == 1 and "changed since `ndt track`" in changed.stderr
