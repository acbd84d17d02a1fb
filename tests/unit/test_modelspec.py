"""Model specs: zoo names, module and file factories, and the ndt.toml manifest."""

from __future__ import annotations

import pytest
from torch import nn

from ndt.errors import ModelSpecError
from ndt.io.manifest import ModelSpec, read_manifest, write_manifest
from ndt.models.spec import build_model, parse_model_kwargs


def test_zoo_model():
    model = build_model(ModelSpec("mlp", {"in_features": 5, "hidden": [7], "n_classes": 2}))
    assert model.fc1.in_features == 5 and model.head.out_features == 2


def test_module_and_file_factories(tmp_path):
    assert isinstance(build_model(ModelSpec("ndt.models.zoo:mlp", {"hidden": [3]})), nn.Sequential)
    (tmp_path / "models.py").write_text(
        "from torch import nn\ndef build(width=3):\n    return nn.Linear(2, width)\n"
    )
    model = build_model(ModelSpec(f"{tmp_path / 'models.py'}:build", {"width": 4}))
    assert model.out_features == 4


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("resnet", "neither a zoo architecture"),
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("ndt.models.zoo:nothing", "'nothing' in 'ndt.models.zoo' is not a callable"),
        ("ndt.models.zoo:ZOO", "is not a callable"),
        ("missing.py:f", "model file missing.py does not exist"),
    ],
)
def test_bad_specs(target, message):
    with pytest.raises(ModelSpecError, match=message):
        build_model(ModelSpec(target))


def test_factory_returning_something_else(tmp_path):
    (tmp_path / "m.py").write_text("def build():\n    return 3\n")
    with pytest.raises(ModelSpecError, match="returned int, not an nn.Module"):
        build_model(ModelSpec(f"{tmp_path / 'm.py'}:build"))


def test_bad_kwargs():
    with pytest.raises(ModelSpecError, match="does not accept these sizes"):
        build_model(ModelSpec("mlp", {"depth": 3}))
    with pytest.raises(ModelSpecError, match="not valid JSON"):
        parse_model_kwargs("{hidden: 3}")
    with pytest.raises(ModelSpecError, match="must be a JSON object"):
        parse_model_kwargs("[1, 2]")
    assert parse_model_kwargs('{"hidden": [3]}') == {"hidden": [3]}


def test_manifest_round_trip(tmp_path):
    (tmp_path / "models.py").write_text(
        'from torch import nn\ndef build(n=1, name="", flag=False):\n    return nn.Linear(n, 1)\n'
    )
    ckpts = tmp_path / "run" / "ckpts"
    spec = ModelSpec(f"{tmp_path / 'models.py'}:build", {"n": 3, "name": 'a "b"', "flag": True})
    write_manifest(ckpts, spec, probe=tmp_path / "run" / "probe.safetensors", layers=["fc*"])
    text = (ckpts / "ndt.toml").read_text()
    assert 'factory = "../../models.py:build"' in text  # relative, so the folder can move
    manifest = read_manifest(ckpts)
    assert manifest.model == ModelSpec(f"{(tmp_path / 'models.py').resolve()}:build", spec.kwargs)
    assert manifest.probe == (tmp_path / "run" / "probe.safetensors").resolve()
    assert manifest.layers == ("fc*",)
    assert build_model(manifest.model).in_features == 3


def test_manifest_errors(tmp_path):
    assert read_manifest(tmp_path) is None
    (tmp_path / "ndt.toml").write_text("[model\n")
    with pytest.raises(ModelSpecError, match="is not valid TOML"):
        read_manifest(tmp_path)
    (tmp_path / "ndt.toml").write_text("[model]\nkwargs = {}\n")
    with pytest.raises(ModelSpecError, match="needs 'arch' or 'factory'"):
        read_manifest(tmp_path)


def test_a_factory_file_is_recorded_by_its_absolute_path(tmp_path, monkeypatch):
    from ndt.models.spec import model_spec

    monkeypatch.chdir(tmp_path)
    spec = model_spec("models/net.py:build", '{"width": 4}')
    assert spec.target == f"{(tmp_path / 'models' / 'net.py').resolve()}:build"
    assert model_spec("mlp").target == "mlp"


def test_path_kwargs_of_an_ndt_toml_are_relative_to_it(tmp_path):
    from ndt.io.manifest import read_manifest

    folder = tmp_path / "run" / "ckpts"
    folder.mkdir(parents=True)
    (folder / "ndt.toml").write_text(
        '[model]\narch = "mlp"\n[model.kwargs]\nvocab = "../data/vocab.txt"\nname = "a/b"\n'
    )
    kwargs = read_manifest(folder).model.kwargs
    assert kwargs["vocab"] == str((tmp_path / "run" / "data" / "vocab.txt").resolve())
    assert kwargs["name"] == "a/b"  # not a ./ or ../ path: left as written
