"""The track loop: values equal a direct computation, reruns are incremental, failures are
isolated, and options that change the numbers are refused on an existing file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from float64_reference import reference_metrics

from ndt.errors import ConfigMismatchError, ProbeError, WeightsMismatchError
from ndt.io.checkpoints import discover_checkpoints, save_checkpoint
from ndt.io.manifest import ModelSpec, read_manifest
from ndt.io.probe import load_probe
from ndt.io.store import read_results
from ndt.models.loading import load_checkpoint
from ndt.models.spec import build_model
from ndt.replay.engine import capture_activations, layer_spectra, prepare_run
from ndt.replay.track import track


def direct_outputs(run, step: int) -> dict[str, np.ndarray]:
    """Layer outputs on the probe from plain forward hooks, in float64."""
    manifest = read_manifest(run / "ckpts")
    model = build_model(manifest.model).eval()
    (checkpoint,) = [
        c for c in discover_checkpoints(run / "ckpts", exclude=[manifest.probe]) if c.step == step
    ]
    load_checkpoint(model, checkpoint, torch.device("cpu"))
    outputs = {}
    handles = [
        module.register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o))
        for name, module in model.named_modules()
        if name in ("relu1", "relu2", "head")
    ]
    with torch.no_grad():
        model(load_probe(manifest.probe).inputs.double().float())
    for handle in handles:
        handle.remove()
    return {name: out.double().numpy() for name, out in outputs.items()}


def direct_metrics(run, step: int) -> dict[str, dict[str, float]]:
    """The independent float64 SVD reference on plain forward hooks, not ndt's estimators."""
    return {name: reference_metrics(out) for name, out in direct_outputs(run, step).items()}


def test_ndtracker_definitions_match_an_uncentred_numpy_svd(tiny_run, tmp_path):
    track(tiny_run / "ckpts", out=tmp_path / "r.h5", definitions="ndtracker", batch_size=7)
    results = read_results(tmp_path / "r.h5")
    assert results.provenance.definitions == "ndtracker" and not results.provenance.center
    row = list(results.steps).index(30)
    for column, (layer, out) in enumerate(direct_outputs(tiny_run, 30).items()):
        s = np.linalg.svd(out, compute_uv=False)
        got = {name: values[row, column] for name, values in results.metrics.items()}
        assert got["stable_rank"] == pytest.approx((s**2).sum() / s[0] ** 2, rel=1e-6), layer
        assert got["participation_ratio"] == pytest.approx(s.sum() ** 2 / (s**2).sum(), rel=1e-6)
    # Extending the file keeps its definitions; asking for ndt's is refused.
    assert track(tiny_run / "ckpts", out=tmp_path / "r.h5").computed == []
    with pytest.raises(ConfigMismatchError):
        track(tiny_run / "ckpts", out=tmp_path / "r.h5", definitions="ndt")


def test_values_match_direct_computation(tiny_run, tmp_path):
    report = track(tiny_run / "ckpts", out=tmp_path / "r.h5", batch_size=7)
    results = read_results(tmp_path / "r.h5")
    assert list(results.steps) == [0, 10, 20, 30, 40] == report.computed
    assert results.layers == ["relu1", "relu2", "head"]
    expected = direct_metrics(tiny_run, 20)
    row = list(results.steps).index(20)
    for metric, values in results.metrics.items():
        for column, layer in enumerate(results.layers):
            np.testing.assert_allclose(
                values[row, column], expected[layer][metric], rtol=1e-6, err_msg=f"{layer} {metric}"
            )


def test_provenance_is_recorded(tiny_run, tmp_path):
    track(tiny_run / "ckpts", out=tmp_path / "r.h5", command="ndt track x")
    results = read_results(tmp_path / "r.h5")
    provenance = results.provenance
    assert provenance.model == "mlp"
    assert json.loads(provenance.model_kwargs) == {
        "in_features": 12,
        "hidden": [16, 8],
        "n_classes": 3,
    }
    assert provenance.probe_sha256 == load_probe(tiny_run / "probe.safetensors").sha256
    assert provenance.center is True and provenance.command == "ndt track x"
    assert provenance.checkpoint_dir == str((tiny_run / "ckpts").resolve())
    assert results.checkpoints["file"].tolist()[0] == "step_00000000.safetensors"
    assert (results.checkpoints["size"] > 0).all()


def test_rerun_computes_only_new_checkpoints(tiny_run, tmp_path):
    out = tmp_path / "r.h5"
    first = track(tiny_run / "ckpts", out=out, steps=(None, 20))
    assert first.computed == [0, 10, 20]
    second = track(tiny_run / "ckpts", out=out)
    assert second.computed == [30, 40] and second.skipped == [0, 10, 20]
    again = track(tiny_run / "ckpts", out=out, overwrite=True)
    assert again.computed == [0, 10, 20, 30, 40]
    np.testing.assert_allclose(
        second.results.metrics["stable_rank"], again.results.metrics["stable_rank"]
    )


def test_changed_options_are_refused(tiny_run, tmp_path):
    out = tmp_path / "r.h5"
    track(tiny_run / "ckpts", out=out, steps=(0, 10))
    with pytest.raises(
        ConfigMismatchError, match="was made with center=True, not False; pass --overwrite"
    ):
        track(tiny_run / "ckpts", out=out, center=False)
    with pytest.raises(ConfigMismatchError, match="metrics"):
        track(tiny_run / "ckpts", out=out, metrics=["stable_rank"])


def test_corrupt_checkpoint_is_skipped_and_retried(tiny_run, tmp_path):
    broken = tiny_run / "ckpts" / "step_00000020.safetensors"
    good = broken.read_bytes()
    broken.write_bytes(good[: len(good) // 2])
    out = tmp_path / "r.h5"
    report = track(tiny_run / "ckpts", out=out)
    assert report.computed == [0, 10, 30, 40]
    assert report.failures[0][0] == "step_00000020.safetensors"
    assert read_results(out).failures["file"].tolist() == ["step_00000020.safetensors"]
    broken.write_bytes(good)
    assert track(tiny_run / "ckpts", out=out).computed == [20]
    assert read_results(out).failures is None


def test_mismatched_weights_stop_the_run_and_keep_earlier_results(tiny_run, tmp_path):
    other = build_model(ModelSpec("mlp", {"in_features": 12, "hidden": [16, 9], "n_classes": 3}))
    save_checkpoint(other, tiny_run / "ckpts", 25)
    out = tmp_path / "r.h5"
    with pytest.raises(
        WeightsMismatchError,
        match="step_00000025.safetensors does not fit the model: shape mismatch",
    ):
        track(tiny_run / "ckpts", out=out)
    assert list(read_results(out).steps) == [0, 10, 20]


def test_nan_weights_give_nan_metrics_not_a_crash(tiny_run, tmp_path):
    setup = prepare_run(tiny_run / "ckpts")
    with torch.no_grad():
        setup.model.fc1.weight[0, 0] = float("nan")
    save_checkpoint(setup.model, tiny_run / "ckpts", 50)
    report = track(tiny_run / "ckpts", out=tmp_path / "r.h5")
    assert {layer for step, layer in report.non_finite if step == 50} == {"relu1", "relu2", "head"}
    assert np.isnan(report.results.metrics["stable_rank"][-1]).all()
    assert np.isfinite(report.results.metrics["stable_rank"][:-1]).all()


def test_probe_that_does_not_fit(tiny_run, tmp_path):
    from ndt.io.probe import save_probe

    save_probe(tmp_path / "bad.safetensors", torch.zeros(4, 5))
    with pytest.raises(ProbeError, match="bad.safetensors does not fit the model"):
        track(tiny_run / "ckpts", out=tmp_path / "r.h5", probe=tmp_path / "bad.safetensors")


def test_layer_spectra_do_not_depend_on_chunk_size(tiny_run):
    setup = prepare_run(tiny_run / "ckpts", device="cpu")
    whole = layer_spectra(setup.model, setup.probe, setup.layers)
    chunked = layer_spectra(setup.model, setup.probe, setup.layers, batch_size=3)
    for name in setup.layers:
        np.testing.assert_allclose(
            whole[name].eigenvalues, chunked[name].eigenvalues, rtol=1e-6, atol=1e-9
        )


def test_capture_activations_concatenates_chunks(tiny_run):
    setup = prepare_run(tiny_run / "ckpts", device="cpu")
    acts = capture_activations(setup.model, setup.probe, ["relu1", "head"], batch_size=6)
    assert acts["relu1"].shape == (40, 16) and acts["head"].shape == (40, 3)
    with torch.no_grad():
        torch.testing.assert_close(acts["head"], setup.model(setup.probe.inputs))


def test_interrupted_run_keeps_finished_checkpoints(tiny_run, tmp_path):
    out = tmp_path / "r.h5"

    def stop_after_two(done: int, total: int, step: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        track(tiny_run / "ckpts", out=out, progress=stop_after_two)
    assert list(read_results(out).steps) == [0, 10]
    assert not list(tmp_path.glob(".*tmp"))
    assert track(tiny_run / "ckpts", out=out).computed == [20, 30, 40]


def test_folding_on_a_worker_sees_outputs_before_in_place_ops():
    from ndt.io.probe import Probe
    from ndt.replay.engine import Folder, fold_probe

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 5), torch.nn.ReLU(inplace=True), torch.nn.Linear(5, 2)
    ).eval()
    probe = Probe(torch.randn(30, 6))
    direct = fold_probe(model, probe, ["0", "2"], batch_size=4).settle()
    with Folder() as folder:
        deferred = fold_probe(model, probe, ["0", "2"], batch_size=4, folder=folder).settle()
    with torch.no_grad():
        pre_activation = model[0](probe.inputs)
    assert (pre_activation < 0).any()  # the in-place ReLU would have changed what we saw
    reference = (
        np.linalg.svd((pre_activation - pre_activation.mean(0)).double().numpy(), compute_uv=False)
        ** 2
    )
    for name in ("0", "2"):
        np.testing.assert_allclose(
            deferred[name].finalize().eigenvalues, direct[name].finalize().eigenvalues, rtol=1e-9
        )
    np.testing.assert_allclose(deferred["0"].finalize().eigenvalues[:5], reference, rtol=1e-5)


def test_folder_holds_at_most_max_pending_copies():
    import threading

    from ndt.replay.engine import Folder

    gate = threading.Event()
    seen: list[torch.Tensor] = []

    def job(output: torch.Tensor) -> None:
        seen.append(output)
        gate.wait()

    original = torch.zeros(3)
    with Folder(max_pending=2) as folder:
        folder.submit(job, original)
        folder.submit(job, original)
        third = threading.Thread(target=folder.submit, args=(job, original))
        third.start()
        third.join(timeout=0.3)
        assert third.is_alive()  # both slots are held: the caller waits
        gate.set()
        third.join(timeout=10)
        assert not third.is_alive()
    assert len(seen) == 3
    assert all(copy is not original for copy in seen)  # each job got its own copy
