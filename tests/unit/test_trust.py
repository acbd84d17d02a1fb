import json
from pathlib import Path

import pytest

from ndt.errors import NdtError
from ndt.io.manifest import ModelSpec, write_manifest
from ndt.models.trust import (
    UntrustedCodeError,
    is_trusted,
    remember_model,
    require_consent,
    runs_code,
    trust_file,
    trust_folder,
)

SYSTEM = ModelSpec("os:system", {"command": "touch marker"})


def test_which_specs_run_code():
    assert not runs_code(ModelSpec("mlp", {"hidden": [3]}))
    assert not runs_code(ModelSpec("hf:gpt2"))
    assert runs_code(ModelSpec("hf:someone/model", {"trust_remote_code": True}))
    assert runs_code(SYSTEM)
    assert runs_code(ModelSpec("/abs/models.py:build"))


def test_trust_file_location(monkeypatch, tmp_path):
    monkeypatch.delenv("NDT_TRUST_FILE")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert trust_file() == tmp_path / "config" / "ndt" / "trusted.json"
    monkeypatch.setenv("NDT_TRUST_FILE", str(tmp_path / "t.json"))
    assert trust_file() == tmp_path / "t.json"


def test_refusal_names_what_would_run_and_how_to_allow(tmp_path):
    write_manifest(tmp_path, SYSTEM)
    with pytest.raises(UntrustedCodeError) as caught:
        require_consent(SYSTEM, source="ckpts/ndt.toml", folder=tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert 'os:system(command="touch marker")' in message
    assert "--trust-code" in message and f"`ndt trust {tmp_path}`" in message
    require_consent(SYSTEM, source="x", folder=tmp_path, trust_code=True)  # consent given
    require_consent(ModelSpec("mlp"), source="x", folder=tmp_path)  # the zoo needs none


def test_python_file_is_named_with_its_path():
    spec = ModelSpec("/data/models.py:build", {"width": 4})
    with pytest.raises(
        UntrustedCodeError, match=r"the Python file /data/models\.py .*build\(width=4\)"
    ):
        require_consent(spec, source="results.h5")


def test_trusting_a_folder_records_its_manifest_hash(tmp_path, private_trust_file):
    write_manifest(tmp_path, SYSTEM)
    assert not is_trusted(SYSTEM, tmp_path)
    trusted = trust_folder(tmp_path)
    assert trusted.model == SYSTEM and trusted.path == tmp_path.resolve()
    recorded = json.loads(private_trust_file.read_text())["folders"][str(tmp_path.resolve())]
    import hashlib

    expected = hashlib.sha256((tmp_path / "ndt.toml").read_bytes()).hexdigest()
    assert recorded["manifest_sha256"] == expected
    assert is_trusted(SYSTEM, tmp_path)
    assert not is_trusted(SYSTEM)  # the folder, not the spec, was trusted
    # Another spec in the folder's ndt.toml: the consent no longer holds.
    other = ModelSpec("os:system", {"command": "touch other"})
    write_manifest(tmp_path, other)
    assert not is_trusted(other, tmp_path)
    # Even an edit that keeps the spec needs consent again (the hash changed).
    write_manifest(tmp_path, SYSTEM)
    with (tmp_path / "ndt.toml").open("a") as handle:
        handle.write("# edited\n")
    assert not is_trusted(SYSTEM, tmp_path)


def test_trust_needs_a_manifest(tmp_path):
    with pytest.raises(NdtError, match="has no ndt.toml"):
        trust_folder(tmp_path)


def test_remembered_model_is_trusted_with_the_same_kwargs_only():
    assert remember_model(SYSTEM)
    assert is_trusted(SYSTEM)
    assert not is_trusted(ModelSpec("os:system", {"command": "touch other"}))
    assert not remember_model(ModelSpec("mlp"))  # nothing to remember


def test_a_corrupt_trust_file_is_named(private_trust_file: Path):
    private_trust_file.write_text("[1, 2")
    with pytest.raises(NdtError, match="is not an ndt trust file"):
        is_trusted(SYSTEM)
    assert not remember_model(SYSTEM)  # logged, not raised: the typed command needs none
