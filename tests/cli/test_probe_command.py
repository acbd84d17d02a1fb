"""`ndt probe`: the written file read back and checked against its source; errors on stderr."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_one_error
from sklearn.datasets import load_digits

from ndt.io.probe import load_probe


def test_digits_probe_written_and_reported(ndt, tmp_path):
    path = tmp_path / "probe.safetensors"
    result = ndt("probe", path, "--digits", "120", "--seed", "4")
    assert result.exit_code == 0, result.output
    probe = load_probe(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"Wrote {path} (120 samples)" in result.stdout
    assert f"sha256 {digest}" in result.stdout
    assert "inputs   120x64" in result.stdout and "float32" in result.stdout
    assert probe.inputs.shape == (120, 64) and probe.labels.shape == (120,)
    assert np.bincount(probe.labels.numpy()).tolist() == [12] * 10
    # Rows are scikit-learn's digits scaled to [0, 1], each with its true label.
    data, target = load_digits(return_X_y=True)
    index_of = {(data[i] / 16).astype(np.float32).tobytes(): i for i in range(len(data))}
    indices = [index_of[row.tobytes()] for row in probe.inputs.numpy()]
    assert target[indices].tolist() == probe.labels.tolist()
    assert result.stderr == ""


def test_digits_images_json(ndt, tmp_path):
    path = tmp_path / "images.safetensors"
    result = ndt("probe", path, "--digits", "30", "--image", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert summary["n_samples"] == 30
    assert summary["tensors"] == {
        "inputs": {"shape": [30, 1, 8, 8], "dtype": "float32"},
        "labels": {"shape": [30], "dtype": "int64"},
    }
    assert load_probe(path).inputs.shape == (30, 1, 8, 8)


def test_gaussian_is_seeded(ndt, tmp_path):
    for name, seed in [("a", "1"), ("b", "1"), ("c", "2")]:
        result = ndt(
            "probe", tmp_path / f"{name}.safetensors", "--gaussian", "50x6", "--seed", seed
        )
        assert result.exit_code == 0, result.output
    a, b, c = (load_probe(tmp_path / f"{n}.safetensors") for n in "abc")
    want = np.random.default_rng(1).standard_normal((50, 6), dtype=np.float32)
    np.testing.assert_array_equal(a.inputs.numpy(), want)
    assert a.sha256 == b.sha256 != c.sha256
    assert a.labels is None


def test_tokens(ndt, tmp_path):
    path = tmp_path / "tokens.safetensors"
    result = ndt("probe", path, "--tokens", "64x16", "--vocab", "50", "--json")
    assert result.exit_code == 0, result.output
    tokens = load_probe(path).inputs
    assert tokens.dtype == torch.int64 and tokens.shape == (64, 16)
    assert 0 <= int(tokens.min()) and int(tokens.max()) < 50
    assert json.loads(result.stdout)["tensors"]["inputs"]["dtype"] == "int64"


def test_from_npy_with_labels(ndt, tmp_path):
    data = np.random.default_rng(0).standard_normal((12, 5))
    np.save(tmp_path / "x.npy", data)
    np.save(tmp_path / "y.npy", np.arange(12) % 3)
    path = tmp_path / "p.safetensors"
    result = ndt("probe", path, "--from", tmp_path / "x.npy", "--labels", tmp_path / "y.npy")
    assert result.exit_code == 0, result.output
    probe = load_probe(path)
    np.testing.assert_array_equal(probe.inputs.numpy(), data.astype(np.float32))
    assert probe.labels.tolist() == [i % 3 for i in range(12)]


def test_from_csv_with_label_column(ndt, tmp_path):
    (tmp_path / "d.csv").write_text("f1,f2,y\n0.5,1,1\n2,3,0\n")
    path = tmp_path / "p.safetensors"
    result = ndt("probe", path, "--from", tmp_path / "d.csv", "--label-column", "y")
    assert result.exit_code == 0, result.output
    probe = load_probe(path)
    assert probe.inputs.tolist() == [[0.5, 1.0], [2.0, 3.0]] and probe.labels.tolist() == [1, 0]


def test_errors_are_one_line(ndt, tmp_path):
    path = tmp_path / "p.safetensors"
    assert_one_error(ndt("probe", path), "give exactly one of")
    assert_one_error(ndt("probe", path, "--digits", "5", "--gaussian", "3x3"), "--digits and")
    assert_one_error(ndt("probe", path, "--gaussian", "12xa"), "'12xa' is not a shape")
    assert_one_error(ndt("probe", path, "--tokens", "4x4"), "--tokens needs --vocab")
    assert_one_error(ndt("probe", path, "--digits", "5000"), "1 to 1740")
    assert_one_error(ndt("probe", path, "--from", tmp_path / "none.npy"), "does not exist")
    assert not path.exists()
    assert ndt("probe", path, "--gaussian", "3x3").exit_code == 0
    assert_one_error(ndt("probe", path, "--gaussian", "3x3"), "pass --overwrite")
    assert ndt("probe", path, "--gaussian", "3x3", "--overwrite", "--seed", "9").exit_code == 0


def test_real_entry_point_fails_cleanly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "from ndt_cli.main import main; main()", "probe",
         str(tmp_path / "p.safetensors"), "--tokens", "0x3", "--vocab", "4"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: --tokens (0, 3) must have every size at least 1"
    ]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_reproduces_the_committed_fixture_probes(ndt, tmp_path, fixtures_dir):
    for name, extra in [("digits-mlp", []), ("digits-cnn", ["--image"])]:
        path = tmp_path / f"{name}.safetensors"
        result = ndt("probe", path, "--digits", "512", "--seed", "0", *extra, "--json")
        assert result.exit_code == 0, result.output
        committed = fixtures_dir / name / "probe.safetensors"
        assert path.read_bytes() == committed.read_bytes()
        assert json.loads(result.stdout)["sha256"] == load_probe(committed).sha256


def test_digits_image_size_resized_probe(ndt, tmp_path):
    from PIL import Image

    small, large = tmp_path / "small.safetensors", tmp_path / "large.safetensors"
    assert ndt("probe", small, "--digits", "20", "--image", "--seed", "2").exit_code == 0
    result = ndt("probe", large, "--digits", "20", "--image", "--image-size", "32x24",
                 "--seed", "2", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["tensors"]["inputs"] == {"shape": [20, 1, 32, 24], "dtype": "float32"}
    before, after = load_probe(small), load_probe(large)
    assert torch.equal(before.labels, after.labels)
    # Pillow's bilinear resize of each 8x8 image (an independent implementation).
    expected = np.stack([
        np.asarray(Image.fromarray(img[0].numpy(), mode="F").resize((24, 32), Image.BILINEAR))
        for img in before.inputs
    ])  # fmt: skip
    np.testing.assert_allclose(after.inputs[:, 0].numpy(), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--digits", "5", "--image", "--image-size", "0"], "--image-size 0"),
        (["--digits", "5", "--image", "--image-size", "abc"], "--image-size 'abc'"),
        (["--digits", "5", "--image", "--image-size", "28x"], "--image-size '28x'"),
        (["--digits", "5", "--image-size", "28"], "--image-size needs --image"),
        (["--gaussian", "3x3", "--image-size", "28"], "--image-size applies to --digits"),
    ],
)
def test_image_size_errors(ndt, tmp_path, extra, fragment):
    path = tmp_path / "p.safetensors"
    assert_one_error(ndt("probe", path, *extra), fragment)
    assert not path.exists()


def test_vit_tracks_a_resized_digits_probe(ndt, tmp_path):
    """A zoo ViT built for 28x28 images runs `ndt track` on a --image-size 28 probe; its
    metrics equal numpy's float64 SVD of the outputs captured here."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))
    from float64_reference import reference_metrics

    from ndt.io.checkpoints import save_checkpoint
    from ndt.io.store import read_results
    from ndt.models.spec import ModelSpec, build_model

    probe = tmp_path / "probe.safetensors"
    assert ndt("probe", probe, "--digits", "48", "--image", "--image-size", "28").exit_code == 0
    kwargs = {"image_size": 28, "patch_size": 7, "d_model": 16, "n_layers": 1, "n_heads": 2}
    torch.manual_seed(0)
    model = build_model(ModelSpec("vit", kwargs)).eval()
    save_checkpoint(model, tmp_path / "ckpts", 0)
    out = tmp_path / "r.h5"
    result = ndt("track", tmp_path / "ckpts", "--model", "vit", "--model-kwargs",
                 json.dumps(kwargs), "--probe", probe, "--out", out, "--layers",
                 "blocks.0", "--layers", "head", "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    results = read_results(out)
    captured = {}
    hooks = [
        module.register_forward_hook(
            lambda _m, _a, output, name=name: captured.__setitem__(name, output)
        )
        for name, module in [("blocks.0", model.blocks[0]), ("head", model.head)]
    ]
    with torch.no_grad():
        model(load_probe(probe).inputs)
    for hook in hooks:
        hook.remove()
    assert captured["blocks.0"].shape == (48, 17, 16)  # 16 patches and the class token
    for name, value in captured.items():
        rows = value.double().reshape(-1, value.shape[-1]).numpy()
        column = results.layers.index(name)
        for metric, expected in reference_metrics(rows).items():
            assert results.metrics[metric][0, column] == pytest.approx(expected, rel=1e-4)
