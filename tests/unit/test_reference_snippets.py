"""Each snippet of the reference doc (../shared/seed/phase2-reference.md), run against ndt.

The snippet code is kept as written; only the user's parts are supplied: a small model
for 8x8 digits instead of 784-wide MNIST, scikit-learn's digits as `dataloader`, the
`device`, `optimizer` and `criterion` globals, and paths under tmp_path. Two snippet bugs
are fixed where noted (§5.1 uses `dataloader_iter` before assigning it and never registers
the analyzer's hooks). Each test then checks the numbers, not only that the code runs.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from ndt import HighFrequencyTracker, Phase2Checkpointer, export_to_hdf5, read_results
from ndt.architectures import detect_architecture, get_handler, select_layers
from ndt.core.estimators import participation_ratio, stable_rank
from ndt.core.hooks import ActivationCapture
from ndt.core.jump_detector import JumpDetector
from ndt.io.checkpoints import discover_checkpoints

device = torch.device("cpu")


def reference_metrics(activation) -> tuple[float, float]:
    """(stable rank, participation ratio) from a float64 numpy SVD of the centred matrix."""
    a = np.asarray(activation, dtype=np.float64).reshape(len(activation), -1)
    lam = np.linalg.svd(a - a.mean(0), compute_uv=False) ** 2
    return lam.sum() / lam.max(), lam.sum() ** 2 / (lam**2).sum()


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(64, 32), nn.ReLU(),
        nn.Linear(32, 16), nn.ReLU(),
        nn.Linear(16, 10),
    )  # fmt: skip


def digits_dataloader(batch_size: int = 64, n: int = 64 * 28) -> torch.utils.data.DataLoader:
    data, target = load_digits(return_X_y=True)
    x = torch.from_numpy((data[:n] / 16.0).astype(np.float32))
    dataset = torch.utils.data.TensorDataset(x, torch.from_numpy(target[:n]))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)


def test_1_1_high_frequency_tracking(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    model = small_model()
    dataloader = digits_dataloader()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    criterion = nn.CrossEntropyLoss()
    initial = copy.deepcopy(model)
    first_x = next(iter(dataloader))[0]

    # --- snippet ---
    tracker = HighFrequencyTracker(
        model,
        sampling_frequency=1,  # Log every step
        enable_jump_detection=True,
        jump_z_threshold=2.5,  # Lower threshold for earlier detection
    )
    for step, (x, y) in enumerate(dataloader):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        tracker.log(step, loss.item(), grad_norm=None)
    results = tracker.get_results()  # Dict[layer_name -> DataFrame]
    all_jumps = tracker.detect_jumps(metric="stable_rank")
    for layer_name, jumps in all_jumps.items():
        if jumps:
            print(f"\n{layer_name}:")
            for jump in jumps:
                print(
                    f"  Step {jump.step}: {jump.value_before:.2f} -> {jump.value_after:.2f} "
                    f"(z={jump.z_score:.2f})"
                )
    from ndt import export_to_hdf5

    export_to_hdf5(results, "phase1_results.h5", metadata={"model": "MLP", "dataset": "MNIST"})
    # --- end ---

    # Without a probe the default layers are ndtracker's: every Linear, named by class.
    assert list(results) == ["Linear_0", "Linear_1", "Linear_2"]
    assert all(len(frame) == len(dataloader) for frame in results.values())
    with torch.no_grad():
        hidden = initial[0](first_x).numpy()
    sr, pr = reference_metrics(hidden)  # step 0 measured the first batch, before the update
    assert results["Linear_0"]["stable_rank"][0] == pytest.approx(sr, rel=1e-6)
    assert results["Linear_0"]["participation_ratio"][0] == pytest.approx(pr, rel=1e-6)
    detector = JumpDetector(window_size=50, z_threshold=2.5)  # the tracker's defaults
    expected = detector.detect_jumps(results["Linear_1"]["stable_rank"].to_numpy())
    assert [j.step for j in all_jumps["Linear_1"]] == [j.step for j in expected]  # steps 0, 1, ...
    stored = read_results(tmp_path / "phase1_results.h5")
    assert stored.metadata == {"model": "MLP", "dataset": "MNIST"}
    np.testing.assert_array_equal(
        stored.metrics["stable_rank"][:, 0], results["Linear_0"]["stable_rank"]
    )
    assert capsys.readouterr().out.count("Step ") == sum(map(len, all_jumps.values()))


def _phase1_json(path: Path, planted_at: int) -> Path:
    """A Phase 1 JSON file: {layer: {step: [...], stable_rank: [...]}}, one planted step."""
    rng = np.random.default_rng(planted_at)
    steps = np.arange(0, 500, 10)
    curve = 5 + 0.01 * rng.standard_normal(steps.size) + 3.0 * (steps >= planted_at)
    flat = 4 + 0.01 * rng.standard_normal(steps.size)
    data = {
        "Linear_0_out": {"step": steps.tolist(), "stable_rank": curve.tolist()},
        "Linear_1_out": {"step": steps.tolist(), "stable_rank": flat.tolist()},
    }
    path.write_text(json.dumps(data))
    return path


def test_1_2_jumps_from_phase1_json(tmp_path, capsys):
    results_file = _phase1_json(tmp_path / "mlp_deep_10_mnist.json", planted_at=200)
    # --- snippet ---
    with open(results_file) as f:
        data = json.load(f)
    layers = data.keys()
    for layer in layers:
        if layer.startswith("Linear"):
            steps = np.array(data[layer]["step"])
            stable_rank = np.array(data[layer]["stable_rank"])
            gradients = np.gradient(stable_rank)
            threshold = np.std(gradients) * 2.5
            jump_indices = np.where(np.abs(gradients) > threshold)[0]
            if len(jump_indices) > 0:
                print(f"\n{layer} - Potential jump points:")
                for idx in jump_indices:
                    print(f"  Step {steps[idx]}: gradient = {gradients[idx]:.4f}")
    # --- end ---
    out = capsys.readouterr().out
    assert "Linear_0_out - Potential jump points" in out
    # Central differences put the planted step between 190 and 200 on both points.
    assert "Step 190:" in out and "Step 200:" in out


def test_1_3_auto_detect_architecture():
    model = small_model()
    # --- snippet ---
    arch_name = detect_architecture(model)
    handler = get_handler(model)
    layers_to_monitor = handler.get_activation_layers(model)
    layer_names = handler.get_layer_names(model)
    tracker = HighFrequencyTracker(
        model, layers=layers_to_monitor, layer_names=layer_names, sampling_frequency=5
    )
    # --- end ---
    assert str(arch_name) == "MLP"  # a handler; printed, its family's name
    assert layer_names == ["Linear_0_64x32", "Linear_1_32x16", "Linear_2_16x10"]
    assert layers_to_monitor == [model[0], model[2], model[4]]
    assert select_layers(model) == ["1", "3", "4"]  # ndt track's own default
    model(torch.randn(8, 64))
    tracker.log(5, 0.0)
    assert list(tracker.get_results()) == layer_names
    tracker.close()


def capture_around_jump(model, dataloader, jump_step, capture_window=5):
    """§2.1, as written."""
    activations_before = {}
    activations_after = {}
    capture = ActivationCapture()
    linear_layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    capture.register_hooks(model, linear_layers)
    model.eval()
    with torch.no_grad():
        for step, (x, y) in enumerate(dataloader):  # noqa: B007 - as the snippet
            if step == jump_step - capture_window:
                _ = model(x.to(device))
                activations_before = {
                    name: tensor.cpu().numpy()
                    for name, tensor in capture.get_all_activations().items()
                }
                print(f"Captured before-jump at step {step}")
            elif step == jump_step + capture_window:
                _ = model(x.to(device))
                activations_after = {
                    name: tensor.cpu().numpy()
                    for name, tensor in capture.get_all_activations().items()
                }
                print(f"Captured after-jump at step {step}")
                break
    capture.remove_hooks()
    return activations_before, activations_after


def test_2_1_capture_around_jump():
    model, dataloader = small_model(), digits_dataloader()
    before, after = capture_around_jump(model, dataloader, jump_step=10, capture_window=5)
    batches = [x for x, _ in dataloader]
    assert list(before) == ["Linear_0", "Linear_1", "Linear_2"]
    with torch.no_grad():
        np.testing.assert_array_equal(before["Linear_0"], model[0](batches[5]).numpy())
        np.testing.assert_array_equal(after["Linear_2"], model(batches[15]).numpy())
    assert all(not m._forward_hooks for m in model.modules())


def capture_activations_at_steps(model, dataloader, target_steps, save_path="activations.h5"):
    """§2.2, as written."""
    capture = ActivationCapture()
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    capture.register_hooks(model, layers)
    activations_by_step = {}
    model.eval()
    with torch.no_grad():
        for step, (x, y) in enumerate(dataloader):  # noqa: B007 - as the snippet
            if step in target_steps:
                capture.clear_activations()
                _ = model(x.to(device))
                step_activations = {}
                for layer_idx, (name, module) in enumerate(  # noqa: B007
                    [(f"layer_{i}", m) for i, m in enumerate(layers)]
                ):
                    act = capture.get_activation(f"Linear_{layer_idx}_out")
                    if act is not None:
                        step_activations[name] = act.cpu().numpy()
                activations_by_step[step] = step_activations
                print(f"Captured activations at step {step}")
    with h5py.File(save_path, "w") as f:
        for step, acts in activations_by_step.items():
            step_group = f.create_group(f"step_{step}")
            for layer_name, activation in acts.items():
                step_group.create_dataset(layer_name, data=activation, compression="gzip")
    capture.remove_hooks()
    print(f"Saved {len(activations_by_step)} snapshots to {save_path}")
    return activations_by_step


def test_2_2_capture_at_steps(tmp_path):
    model, dataloader = small_model(), digits_dataloader()
    by_step = capture_activations_at_steps(model, dataloader, {2, 7}, tmp_path / "a.h5")
    batches = [x for x, _ in dataloader]
    with torch.no_grad():
        expected = model[2](model[1](model[0](batches[7]))).numpy()
    with h5py.File(tmp_path / "a.h5") as f:
        assert sorted(f) == ["step_2", "step_7"] and sorted(f["step_7"]) == [
            "layer_0", "layer_1", "layer_2"
        ]  # fmt: skip
        np.testing.assert_array_equal(f["step_7/layer_1"][()], expected)
    np.testing.assert_array_equal(by_step[7]["layer_1"], expected)


def _phases():
    """Activations of two differently trained copies of the model on the same batch."""
    model, dataloader = small_model(), digits_dataloader()
    by_step = capture_activations_at_steps(model, dataloader, {0}, "/dev/null")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    for x, y in dataloader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    later = capture_activations_at_steps(model, dataloader, {0}, "/dev/null")
    return {0: by_step[0], 30: later[0]}


def test_3_geometry_snippets_agree_with_ndt_analysis(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from sklearn.cluster import KMeans  # noqa: F401 - the snippets' imports
    from sklearn.preprocessing import StandardScaler  # noqa: F401

    from ndt.analysis import analyze_activation_phases as ndt_pca
    from ndt.analysis import compute_neuron_statistics as ndt_neurons

    monkeypatch.chdir(tmp_path)
    by_step = _phases()
    # §3.1 (without the plotting loop): PCA over both phases of each layer.
    steps = sorted(by_step)
    stacked = np.vstack([by_step[s]["layer_1"] for s in steps])
    mine = PCA(n_components=10).fit(stacked).explained_variance_ratio_
    ndt_version = ndt_pca(by_step, n_components=10)["layer_1"].explained_variance
    np.testing.assert_allclose(ndt_version, mine, rtol=1e-4)
    # §3.3: dead neurons before/after, the reference's 0.9 sparsity rule.
    a, b = by_step[0]["layer_1"], by_step[30]["layer_1"]
    became_dead = ~((a == 0).mean(0) > 0.9) & ((b == 0).mean(0) > 0.9)
    stats = ndt_neurons(by_step[0], by_step[30])["layer_1"]
    np.testing.assert_array_equal(stats.became_dead, became_dead)


class Phase2AnalyzerBase:
    """§4.1, as written."""

    def __init__(self, model, device=None):
        self.model = model
        self.device = device or (
            torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
        )
        self.activations_cache = {}
        self.hooks = []

    def register_activation_hooks(self, layers=None):
        if layers is None:
            layers = [m for m in self.model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        self.capture = ActivationCapture()
        self.capture.register_hooks(self.model, layers)

    def capture_activations(self, x):
        self.model.eval()
        with torch.no_grad():
            _ = self.model(x.to(self.device))
            return self.capture.get_all_activations()

    def analyze_dimensionality(self, activations):
        results = {}
        for layer_name, activation in activations.items():
            if activation.ndim == 4:
                activation = activation.view(activation.size(0), -1)
            elif activation.ndim == 3:
                activation = activation.view(-1, activation.size(-1))
            results[layer_name] = {
                "stable_rank": stable_rank(activation),
                "participation_ratio": participation_ratio(activation),
                "shape": tuple(activation.shape),
                "mean": activation.mean(dim=0).cpu().numpy(),
                "std": activation.std(dim=0).cpu().numpy(),
            }
        return results

    def cleanup(self):
        self.capture.remove_hooks()


def test_4_1_analyzer_template():
    model = small_model()
    x_batch = next(iter(digits_dataloader()))[0]
    # --- snippet ---
    analyzer = Phase2AnalyzerBase(model, device=device)
    analyzer.register_activation_hooks()
    activations = analyzer.capture_activations(x_batch)
    dims = analyzer.analyze_dimensionality(activations)
    analyzer.cleanup()
    # --- end ---
    with torch.no_grad():
        first = model[0](x_batch).numpy()
    sr, pr = reference_metrics(first)
    assert dims["Linear_0"]["stable_rank"] == pytest.approx(sr, rel=1e-6)
    assert dims["Linear_0"]["participation_ratio"] == pytest.approx(pr, rel=1e-6)
    assert dims["Linear_2"]["shape"] == (64, 10)


def test_4_2_checkpointer_usage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, dataloader = small_model(), digits_dataloader(n=64 * 21)  # steps 0..20
    analyzer = Phase2AnalyzerBase(model, device=device)
    analyzer.register_activation_hooks()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    # --- snippet ---
    checkpointer = Phase2Checkpointer(capture_interval=10)
    for step, (x, y) in enumerate(dataloader):
        model.train()  # ... training step ...
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if checkpointer.should_capture(step):
            checkpoint_path = checkpointer.save_checkpoint(model, step)
            activations = analyzer.capture_activations(x)
            checkpointer.save_activations(activations, step)
            print(f"Captured at step {step}")
    # --- end ---
    assert checkpoint_path == Path("phase2_checkpoints/step_00000020.safetensors")
    found = discover_checkpoints("phase2_checkpoints")
    assert [c.step for c in found] == [0, 10, 20]
    restored = checkpointer.load_checkpoint(small_model(), 20)
    assert torch.equal(restored[0].weight, model[0].weight)
    saved = checkpointer.load_activations(20)
    with torch.no_grad():
        np.testing.assert_array_equal(saved["Linear_0"], model[0](x).numpy())


def phase2_mechanistic_experiment(model, dataloader, num_steps=5000):
    """§5.1 as written, with its two bugs fixed (marked FIX)."""
    tracker = HighFrequencyTracker(model, sampling_frequency=5)
    analyzer = Phase2AnalyzerBase(model)
    analyzer.register_activation_hooks()  # FIX: the snippet never registers the hooks
    checkpointer = Phase2Checkpointer()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    criterion = nn.CrossEntropyLoss()
    critical_steps = set()
    dataloader_iter = iter(dataloader)  # FIX: the snippet uses it before assigning it
    for step in range(num_steps):
        try:
            x, y = next(dataloader_iter)
        except StopIteration:
            dataloader_iter = iter(dataloader)
            x, y = next(dataloader_iter)
        model.train()  # the analyzer's capture leaves the model in eval mode
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        tracker.log(step, loss.item())
        if checkpointer.should_capture(step):
            activations = analyzer.capture_activations(x)
            checkpointer.save_activations(activations, step)
            critical_steps.add(step)
    results = tracker.get_results()
    jumps = tracker.detect_jumps(metric="stable_rank")
    jump_steps = set()
    for layer_jumps in jumps.values():
        for jump in layer_jumps:
            jump_steps.add(jump.step)
    print("\nPhase 2 Complete:")
    print(f"  Training steps: {num_steps}")
    print(f"  Jump points: {jump_steps}")
    print(f"  Captured checkpoints: {critical_steps}")
    return {
        "tracker": tracker,
        "analyzer": analyzer,
        "checkpointer": checkpointer,
        "results": results,
        "jumps": jumps,
        "critical_steps": critical_steps,
    }


def test_5_1_full_pipeline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = phase2_mechanistic_experiment(small_model(), digits_dataloader(), num_steps=120)
    assert out["critical_steps"] == {0, 50, 100}
    assert all(
        frame["step"].tolist() == list(range(0, 120, 5)) for frame in out["results"].values()
    )
    export_to_hdf5(out["results"], tmp_path / "run.h5")
    assert read_results(tmp_path / "run.h5").layers == ["Linear_0", "Linear_1", "Linear_2"]
    snapshot = out["checkpointer"].load_activations(100)
    assert snapshot["Linear_1"].shape == (64, 16)
    for layer, jumps in out["jumps"].items():
        assert {j.step for j in jumps} <= set(out["results"][layer]["step"])


def batch_phase2_analysis(phase1_results_dir, architectures=None):
    """§5.2 as written (without its printed summary)."""
    phase1_dir = Path(phase1_results_dir)
    json_files = list(phase1_dir.glob("*.json"))
    if architectures:
        json_files = [f for f in json_files if any(a in f.name for a in architectures)]
    all_results = {}
    for json_file in json_files:
        with open(json_file) as f:
            data = json.load(f)
        layer_jumps = {}
        for layer_name in [k for k in data.keys() if "Linear" in k]:
            steps = np.array(data[layer_name]["step"])
            sr = np.array(data[layer_name]["stable_rank"])
            grad = np.gradient(sr)
            threshold = np.std(grad) * 2.5
            jump_indices = np.where(np.abs(grad) > threshold)[0]
            layer_jumps[layer_name] = {
                "jump_indices": jump_indices.tolist(),
                "jump_steps": steps[jump_indices].tolist(),
            }
        all_results[json_file.stem] = {
            "file": json_file.name,
            "layer_jumps": layer_jumps,
            "n_jumps": sum(len(j["jump_indices"]) for j in layer_jumps.values()),
        }
    return all_results


def test_5_2_batch_analysis(tmp_path):
    _phase1_json(tmp_path / "mlp_a.json", planted_at=200)
    _phase1_json(tmp_path / "cnn_b.json", planted_at=300)
    results = batch_phase2_analysis(tmp_path, architectures=["mlp"])
    assert list(results) == ["mlp_a"]
    assert results["mlp_a"]["layer_jumps"]["Linear_0_out"]["jump_steps"] == [190, 200]


def reference_neuron_statistics(activations_before, activations_after):
    """§3.3's computation, as written (without its report)."""
    stats = {}
    for layer_name in activations_before.keys():
        act_before = activations_before[layer_name]
        act_after = activations_after[layer_name]
        mean_before, mean_after = act_before.mean(axis=0), act_after.mean(axis=0)
        sparsity_before = (act_before == 0).mean(axis=0)
        sparsity_after = (act_after == 0).mean(axis=0)
        dead_before, dead_after = sparsity_before > 0.9, sparsity_after > 0.9
        stats[layer_name] = {
            "mean_before": mean_before, "mean_after": mean_after,
            "mean_change": np.abs(mean_after - mean_before),
            "std_before": act_before.std(axis=0), "std_after": act_after.std(axis=0),
            "sparsity_before": sparsity_before, "sparsity_after": sparsity_after,
            "became_dead": ~dead_before & dead_after, "became_alive": dead_before & ~dead_after,
            "n_dead_before": dead_before.sum(), "n_dead_after": dead_after.sum(),
            "n_became_dead": (~dead_before & dead_after).sum(),
            "n_became_alive": (dead_before & ~dead_after).sum(),
        }  # fmt: skip
    return stats


def test_3_3_report_runs_on_ndts_neuron_statistics(capsys):
    from ndt.analysis import compute_neuron_statistics

    by_step = _phases()
    stats = compute_neuron_statistics(by_step[0], by_step[30])
    # --- snippet: §3.3's report loop ---
    for layer_name, stat in stats.items():
        print(f"\n{layer_name}:")
        print(f"  Neurons that became dead: {stat['n_became_dead']}")
        print(f"  Neurons that became alive: {stat['n_became_alive']}")
        print(f"  Mean activation change (avg): {stat['mean_change'].mean():.4f}")
        print(f"  Max activation change: {stat['mean_change'].max():.4f}")
    # --- end ---
    expected = reference_neuron_statistics(by_step[0], by_step[30])
    for layer, want in expected.items():
        assert set(stats[layer].keys()) == set(want)
        for key, value in want.items():
            # §3.3 computes in the activations' float32; ndt in float64.
            np.testing.assert_allclose(stats[layer][key], value, rtol=1e-5, atol=1e-6, err_msg=key)
    assert capsys.readouterr().out.count("Neurons that became dead") == len(expected)
    with pytest.raises(KeyError, match="the keys are"):
        stats["layer_1"]["n_dead"]
