"""HighFrequencyTracker: in-training curves against an independent float64 reference, and
against `ndt track` on the checkpoints the same training run saved."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from float64_reference import reference_metrics
from sklearn.datasets import load_digits
from torch import nn
from typer.testing import CliRunner

from ndt import HighFrequencyTracker, Phase2Checkpointer, read_results
from ndt.errors import NdtError
from ndt.io.manifest import ModelSpec
from ndt.io.probe import load_probe
from ndt.io.probe_sources import digits_probe
from ndt.models.spec import build_model
from ndt.models.zoo import mlp
from ndt_cli.main import app


def reference(activation: np.ndarray) -> dict[str, float]:
    """Metrics from a float64 numpy SVD of the centred matrix (no ndt code)."""
    return reference_metrics(activation.reshape(activation.shape[0], -1))


def relu1_of(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.relu(model.fc1(x)).numpy()


def sgd_step(model, optimizer, x, y) -> torch.Tensor:
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def test_probe_curves_match_a_float64_svd_of_the_probe_activations():
    torch.manual_seed(0)
    model = mlp(hidden=(24, 16))
    probe = torch.randn(100, 64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    tracker = HighFrequencyTracker(model, sampling_frequency=3, probe=probe)
    expected = []
    for step in range(7):
        loss = sgd_step(model, optimizer, torch.randn(32, 64), torch.randint(0, 10, (32,)))
        tracker.log(step, loss.item(), grad_norm=float(step))
        if step % 3 == 0:
            expected.append(reference(relu1_of(model, probe)))
    frame = tracker.get_results()["relu1"]
    assert list(frame.columns[:3]) == ["step", "loss", "grad_norm"]
    assert frame["step"].tolist() == [0, 3, 6] and frame["grad_norm"].tolist() == [0, 3, 6]
    for name in expected[0]:
        np.testing.assert_allclose(frame[name], [row[name] for row in expected], rtol=1e-6)
    assert model.training  # restored after each probe pass
    assert all(not m._forward_hooks for m in model.modules())  # no hook left behind


def test_without_probe_it_measures_the_latest_training_batch():
    torch.manual_seed(1)
    model = mlp(hidden=(16,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = HighFrequencyTracker(model, layers=["relu1"], sampling_frequency=2)
    expected = []
    for step in range(5):
        x, y = torch.randn(40, 64), torch.randint(0, 10, (40,))
        batch_activation = relu1_of(model, x)  # the forward below sees these weights
        loss = sgd_step(model, optimizer, x, y)
        tracker.log(step, loss)
        if step % 2 == 0:
            expected.append(reference(batch_activation))
    frame = tracker.get_results("relu1")
    assert frame["step"].tolist() == [0, 2, 4]
    np.testing.assert_allclose(
        frame["stable_rank"], [row["stable_rank"] for row in expected], rtol=1e-6
    )
    tracker.close()
    assert all(not m._forward_hooks for m in model.modules())


def test_measurements_that_wait_are_the_steps_own_in_order(caplog):
    """Small outputs of sampled steps wait to be measured together (more steps than the
    tracker keeps, so some are measured on the way): every metric of every step equals
    the float64 reference of that step's batch; a non-finite step is reported at its own
    `log` call and leaves no row; results read mid-run are complete."""
    from ndt.core.tracker import _PENDING_STEPS

    torch.manual_seed(2)
    model = mlp(hidden=(16, 8))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = HighFrequencyTracker(model, layers=["relu1", "relu2"])
    steps = range(_PENDING_STEPS + 9)
    expected: dict[str, list[dict[str, float]]] = {"relu1": [], "relu2": []}
    for step in steps:
        x, y = torch.randn(24, 64), torch.randint(0, 10, (24,))
        if step == 20:  # a forward on a broken batch, not trained on
            x[0, 0] = float("nan")
            with torch.no_grad():
                loss = nn.functional.cross_entropy(model(x), y)
        with torch.no_grad():
            hidden1 = torch.relu(model.fc1(x))
            hidden2 = torch.relu(model.fc2(hidden1))
        if step != 20:
            loss = sgd_step(model, optimizer, x, y)
        with caplog.at_level("ERROR", logger="ndt.core.tracker"):
            tracker.log(step, loss)
        if step == 20:
            assert "Error computing metrics for relu1 at step 20" in caplog.text
            continue
        expected["relu1"].append(reference(hidden1.numpy()))
        expected["relu2"].append(reference(hidden2.numpy()))
        if step == 5:  # read mid-run: the waiting steps are measured first
            assert tracker.get_results("relu1")["step"].tolist() == list(range(6))
    for layer, rows in expected.items():
        frame = tracker.get_results(layer)
        assert frame["step"].tolist() == [s for s in steps if s != 20]
        for name in rows[0]:
            np.testing.assert_allclose(frame[name], [r[name] for r in rows], rtol=1e-6)
        assert len(tracker.metrics_history[layer]) == len(rows)
    tracker.close()


def _train_and_log(model, tracker, steps, log_steps, force_steps=()):
    """Train on random batches; log at `log_steps`; the float64 reference of each logged
    step's batch activations (relu1, as its forward saw the weights)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    expected, hooked = {}, []
    for step in steps:
        x, y = torch.randn(40, 64), torch.randint(0, 10, (40,))
        batch_activation = relu1_of(model, x)
        hooked.append(bool(model.relu1._forward_hooks))  # hooked during this forward?
        loss = sgd_step(model, optimizer, x, y)
        if step in log_steps or step in force_steps:
            tracker.log(step, loss, force=step in force_steps)
            expected[step] = reference(batch_activation)["stable_rank"]
    return expected, hooked


def test_hooks_are_on_only_for_the_forward_of_a_sampled_step_when_log_runs_every_step():
    torch.manual_seed(2)
    model = mlp(hidden=(16,))
    tracker = HighFrequencyTracker(model, layers=["relu1"], sampling_frequency=5)
    expected, hooked = _train_and_log(model, tracker, range(17), range(17))
    # On at first (the cadence is not known yet), then only before steps 5, 10, 15.
    assert hooked == [True, True] + [step % 5 == 0 for step in range(2, 17)]
    frame = tracker.get_results("relu1")
    assert frame["step"].tolist() == [0, 5, 10, 15]
    want = [expected[step] for step in (0, 5, 10, 15)]
    np.testing.assert_allclose(frame["stable_rank"], want, rtol=1e-6)
    tracker.close()
    tracker.log(19, 1.0)  # after close: no hook comes back
    assert all(not m._forward_hooks for m in model.modules())


def test_hooks_stay_on_when_log_skips_steps_or_is_forced_off_schedule(caplog):
    torch.manual_seed(3)
    model = mlp(hidden=(16,))
    tracker = HighFrequencyTracker(model, layers=["relu1"], sampling_frequency=10)
    # Called only at sampled steps: never consecutive, so the hooks stay on.
    expected, hooked = _train_and_log(model, tracker, range(25), {0, 10, 20})
    assert all(hooked)
    np.testing.assert_allclose(
        tracker.get_results("relu1")["stable_rank"], [expected[s] for s in (0, 10, 20)],
        rtol=1e-6,
    )  # fmt: skip
    # Every step, then forced at a step it did not expect: that step's forward ran without
    # hooks, so it records nothing, says why, and keeps the hooks on from then on.
    tracker = HighFrequencyTracker(model, layers=["relu1"], sampling_frequency=10)
    with caplog.at_level("WARNING", logger="ndt.core.tracker"):
        expected, hooked = _train_and_log(
            model, tracker, range(8), {0, 1, 2, 4, 5, 6, 7}, force_steps={3, 6}
        )
    assert "log(step=3): the forward hooks were off since step 2" in caplog.text
    assert hooked == [True, True, False, False, True, True, True, True]
    frame = tracker.get_results("relu1")
    assert frame["step"].tolist() == [0, 6]
    np.testing.assert_allclose(frame["stable_rank"], [expected[0], expected[6]], rtol=1e-6)
    tracker.close()


def test_force_logs_off_schedule_and_modes_of_submodules_are_kept():
    model = mlp(hidden=(8,))
    model.train()
    model.fc1.eval()  # e.g. a frozen part: must stay in eval mode
    tracker = HighFrequencyTracker(model, sampling_frequency=100, probe=torch.randn(20, 64))
    tracker.log(7, 1.0)
    tracker.log(7, 1.0, force=True)
    assert tracker.get_results()["head"]["step"].tolist() == [7]
    assert model.training and model.head.training and not model.fc1.training


def test_layers_as_modules_with_reference_names():
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    layers = [model[0], model[2]]
    tracker = HighFrequencyTracker(
        model, layers=layers, layer_names=["Linear_0", "Linear_1"], probe=torch.randn(12, 6)
    )
    tracker.log(0, 0.5)
    results = tracker.get_results()
    assert list(results) == ["Linear_0", "Linear_1"]
    with torch.no_grad():
        out = model[0](tracker.probe.inputs).numpy()
    assert results["Linear_0"]["stable_rank"][0] == pytest.approx(reference(out)["stable_rank"])


def test_default_layers_are_those_ndt_track_picks():
    tracker = HighFrequencyTracker(mlp(hidden=(8, 8)), probe=torch.randn(4, 64))
    assert tracker.layer_names == ["relu1", "relu2", "head"]


def test_detect_jumps_reports_the_training_step_of_a_planted_change():
    torch.manual_seed(0)
    layer = nn.Linear(8, 8, bias=False)
    nn.init.eye_(layer.weight)
    model = nn.Sequential(layer)
    tracker = HighFrequencyTracker(
        model, layers=["0"], sampling_frequency=5, metrics=["stable_rank"]
    )
    basis = torch.randn(2, 8)
    for step in range(200):
        # Rank-2 inputs until step 100, full rank from then on.
        x = torch.randn(64, 2) @ basis if step < 100 else torch.randn(64, 8)
        model(x)
        tracker.log(step, 0.0)
    jumps = tracker.detect_jumps(metric="stable_rank")["0"]
    assert [jump.step for jump in jumps] == [100]
    assert jumps[0].value_after > jumps[0].value_before + 1 and jumps[0].z_score > 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layers": ["nope"]}, "has no layer 'nope'"),
        ({"layers": [nn.Linear(2, 2)]}, "is not a module of the model"),
        ({"metrics": ["rank"]}, "unknown metric rank"),
        ({"sampling_frequency": 0}, "sampling_frequency must be at least 1"),
        ({"layer_names": ["a"]}, "1 layer_names for 2 layers"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(NdtError, match=match):
        HighFrequencyTracker(mlp(hidden=(4,)), **kwargs)


def test_log_before_any_forward_and_disabled_jumps(caplog):
    tracker = HighFrequencyTracker(mlp(hidden=(4,)), enable_jump_detection=False)
    assert tracker.jump_detector is None
    with caplog.at_level("WARNING", logger="ndt.core.tracker"):
        tracker.log(0, 1.0)
    assert "No activation captured for layer Linear_0 at step 0" in caplog.text
    assert all(frame.empty for frame in tracker.get_results().values())
    with pytest.raises(NdtError, match="Jump detection is disabled"):
        tracker.detect_jumps()


def test_ndtracker_defaults_and_accessors():
    """Without a probe: every Linear/Conv as ndtracker names them, log every step,
    DataFrame for one layer, a DimensionalityMetrics history."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    tracker = HighFrequencyTracker(model)
    assert tracker.layer_names == ["Conv2d_0", "Linear_1"]
    assert tracker.sampling_frequency == 1
    assert (tracker.jump_detector.window_size, tracker.jump_detector.z_threshold) == (50, 3.0)
    x = torch.randn(6, 1, 4, 4)
    model(x)
    assert set(tracker.activations) == {"0", "3"}
    tracker.log(0, 0.25, grad_norm=torch.tensor(2.0))
    assert tracker.activations == {}
    frame = tracker.get_results("Linear_1")
    with torch.no_grad():
        logits = model(x).numpy()
    assert frame["stable_rank"].tolist() == pytest.approx([reference(logits)["stable_rank"]])
    record = tracker.metrics_history["Linear_1"][0]
    assert (record.step, record.loss, record.grad_norm) == (0, 0.25, 2.0)
    assert record.stable_rank == frame["stable_rank"][0]
    with pytest.raises(ValueError, match="Unknown layer name 'fc'"):
        tracker.get_results("fc")
    tracker.close()
    assert not tracker.activation_capture.hooks


def test_definitions_ndtracker_measures_uncentred_singular_values():
    lin = nn.Linear(5, 4)
    tracker = HighFrequencyTracker(lin, layers=[lin], definitions="ndtracker")
    x = torch.randn(30, 5) + 3.0
    out = lin(x).detach().double().numpy()
    tracker.log(0, 0.0)
    s = np.linalg.svd(out, compute_uv=False)
    row = tracker.get_results("")
    assert row["stable_rank"][0] == pytest.approx((s**2).sum() / s[0] ** 2, rel=1e-6)
    assert row["participation_ratio"][0] == pytest.approx(s.sum() ** 2 / (s**2).sum(), rel=1e-6)


def test_non_finite_activations_record_nothing(caplog):
    lin = nn.Linear(3, 2)
    tracker = HighFrequencyTracker(lin, layers=[lin], layer_names=["fc"])
    x = torch.randn(4, 3)
    x[0, 0] = float("nan")
    lin(x)
    with caplog.at_level("ERROR", logger="ndt.core.tracker"):
        tracker.log(0, 1.0)
    assert "Error computing metrics for fc at step 0" in caplog.text
    assert tracker.get_results("fc").empty


def test_tracker_curves_equal_ndt_track_on_the_checkpoints_of_the_same_run(tmp_path):
    """Issue 5: train the digits MLP with Phase2Checkpointer + HighFrequencyTracker on a
    probe, then `ndt track` the saved folder: the two sets of curves agree to 1e-5."""
    torch.manual_seed(0)
    data, target = load_digits(return_X_y=True)
    x_all = torch.from_numpy((data / 16.0).astype(np.float32))
    y_all = torch.from_numpy(target.astype(np.int64))
    spec = ModelSpec("mlp", {"in_features": 64, "hidden": [32, 32, 32], "n_classes": 10})
    model = build_model(spec)
    made = digits_probe(256, seed=0)
    from ndt.io.probe import save_probe

    probe = save_probe(tmp_path / "probe.safetensors", made.inputs, made.labels)
    checkpointer = Phase2Checkpointer(tmp_path / "ckpts", 10, model_spec=spec, probe=probe)
    tracker = HighFrequencyTracker(model, sampling_frequency=10, probe=probe)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for step in range(60):
        chosen = torch.randint(len(y_all), (64,), generator=generator)
        loss = sgd_step(model, optimizer, x_all[chosen], y_all[chosen])
        tracker.log(step, loss.item())
        if checkpointer.should_capture(step):
            checkpointer.save_checkpoint(model, step)

    result = CliRunner().invoke(
        app, ["track", str(tmp_path / "ckpts"), "--out", str(tmp_path / "r.h5"), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    replayed = read_results(tmp_path / "r.h5")
    assert replayed.provenance.probe_sha256 == load_probe(tmp_path / "probe.safetensors").sha256
    curves = tracker.get_results()
    assert replayed.layers == list(curves)
    np.testing.assert_array_equal(replayed.steps, curves["relu1"]["step"])
    for metric, matrix in replayed.metrics.items():
        for column, layer in enumerate(replayed.layers):
            np.testing.assert_allclose(
                curves[layer][metric], matrix[:, column], rtol=1e-5, atol=1e-5,
                err_msg=f"{layer} {metric}",
            )  # fmt: skip
    # The curves changed during training, so agreement is not trivially constant.
    assert np.ptp(replayed.metrics["stable_rank"][:, 0]) > 0.1
    # Both paths share the replay engine, so the check that means something is against the
    # float64 reference: plain forward hooks on the step-50 checkpoint, numpy's SVD.
    from float64_reference import reference_metrics
    from safetensors.torch import load_file

    fresh = build_model(spec).eval()
    (saved,) = (tmp_path / "ckpts").glob("*00050*.safetensors")
    fresh.load_state_dict(load_file(saved))
    outputs = {}
    for name in curves:
        dict(fresh.named_modules())[name].register_forward_hook(
            lambda m, i, o, name=name: outputs.__setitem__(name, o.double().numpy())
        )
    with torch.no_grad():
        fresh(made.inputs)
    at = list(curves["relu1"]["step"]).index(50)
    for layer, output in outputs.items():
        for metric, value in reference_metrics(output.reshape(len(output), -1)).items():
            np.testing.assert_allclose(
                curves[layer][metric][at], value, rtol=1e-5, err_msg=f"{layer} {metric}"
            )
