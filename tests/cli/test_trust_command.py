"""Code named by a file runs only with consent: ndt.toml (track, layers) and a results file's
provenance (compare); `--trust-code` and `ndt trust DIR` give it."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_one_error

from ndt.io.checkpoint_writer import Phase2Checkpointer
from ndt.io.manifest import ModelSpec
from ndt.io.probe import save_probe
from ndt.io.store import read_results
from ndt.models.spec import build_model
from ndt.replay.track import track

KWARGS = {"in_features": 6, "hidden": [8], "n_classes": 3}
# Importing this file leaves a line in imported.txt beside it: the proof that it ran.
MODELS_PY = """\
from pathlib import Path
from ndt.models.zoo import build_zoo_model
with (Path(__file__).parent / "imported.txt").open("a") as handle:
    handle.write("imported\\n")
def build(**kwargs):
    return build_zoo_model("mlp", **kwargs)
"""


def _run(root: Path, toml: str) -> Path:
    """Three checkpoints of a zoo MLP with `toml` as their ndt.toml."""
    torch.manual_seed(0)
    model = build_model(ModelSpec("mlp", KWARGS))
    save_probe(root / "probe.safetensors", torch.randn(30, 6), torch.arange(30) % 3)
    from ndt.io.checkpoints import save_checkpoint

    for step in (0, 10, 20):
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.1 * torch.randn_like(parameter))
        save_checkpoint(model, root / "ckpts", step)
    (root / "ckpts" / "ndt.toml").write_text(toml + '[probe]\npath = "../probe.safetensors"\n')
    return root / "ckpts"


def _factory_toml(root: Path) -> str:
    (root / "models.py").write_text(MODELS_PY)
    kwargs = "".join(f"{k} = {v!r}\n" for k, v in KWARGS.items())
    return f'[model]\nfactory = "../models.py:build"\n[model.kwargs]\n{kwargs}'


def test_ndt_toml_naming_a_python_file_is_refused(ndt, tmp_path):
    ckpts = _run(tmp_path, _factory_toml(tmp_path))
    for command in (["track", ckpts, "-o", tmp_path / "r.h5"], ["layers", ckpts]):
        result = ndt(*command)
        assert_one_error(result, f"the Python file {(tmp_path / 'models.py').resolve()}")
        assert "--trust-code" in result.stderr and f"ndt trust {ckpts}" in result.stderr
    assert not (tmp_path / "imported.txt").exists()
    assert not (tmp_path / "r.h5").exists()


def test_os_system_with_a_command_never_runs_without_consent(ndt, tmp_path):
    marker = tmp_path / "PWNED"
    toml = f'[model]\nfactory = "os:system"\n[model.kwargs]\ncommand = "touch {marker}"\n'
    ckpts = _run(tmp_path, toml)
    result = ndt("track", ckpts, "-o", tmp_path / "r.h5")
    assert_one_error(result, f'os:system(command="touch {marker}")')
    assert not marker.exists()
    assert_one_error(ndt("layers", ckpts), "os:system")
    assert not marker.exists()
    # With --trust-code it does run (and then fails: system() returns no nn.Module).
    result = ndt("track", ckpts, "-o", tmp_path / "r.h5", "--trust-code")
    assert_one_error(result, "os:system returned int, not an nn.Module")
    assert marker.exists()


def test_trust_code_runs_the_factory(ndt, tmp_path):
    ckpts = _run(tmp_path, _factory_toml(tmp_path))
    result = ndt("track", ckpts, "-o", tmp_path / "r.h5", "--trust-code", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "imported.txt").read_text() == "imported\n"
    assert list(read_results(tmp_path / "r.h5").steps) == [0, 10, 20]
    assert ndt("layers", ckpts, "--trust-code").exit_code == 0


def test_ndt_trust_records_the_folder_until_its_toml_changes(ndt, tmp_path, private_trust_file):
    ckpts = _run(tmp_path, _factory_toml(tmp_path))
    result = ndt("trust", ckpts)
    assert result.exit_code == 0, result.stderr
    assert f"the Python file {(tmp_path / 'models.py').resolve()}" in result.stdout
    assert str(private_trust_file) in result.stdout
    assert not (tmp_path / "imported.txt").exists()  # trusting runs nothing
    result = ndt("track", ckpts, "-o", tmp_path / "r.h5", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "imported.txt").exists()
    assert ndt("layers", ckpts).exit_code == 0
    # compare may rebuild the model the trusted folder's ndt.toml names.
    result = ndt("compare", "--results", tmp_path / "r.h5", "--before", 0, "--after", 20)
    assert result.exit_code == 0, result.stderr
    # A changed ndt.toml needs consent again.
    with (ckpts / "ndt.toml").open("a") as handle:
        handle.write("[track]\nlayers = ['fc*']\n")
    assert_one_error(ndt("track", ckpts, "-o", tmp_path / "r2.h5"), "runs only with your consent")


def test_ndt_trust_without_a_manifest(ndt, tmp_path):
    assert_one_error(ndt("trust", tmp_path), "has no ndt.toml")


def test_a_phase2checkpointer_folder_works_after_one_ndt_trust(ndt, tmp_path):
    (tmp_path / "models.py").write_text(MODELS_PY)
    spec = ModelSpec(f"{tmp_path / 'models.py'}:build", KWARGS)
    checkpointer = Phase2Checkpointer(tmp_path / "ckpts", 10, model_spec=spec,
                                      probe=torch.randn(30, 6))  # fmt: skip
    model = build_model(ModelSpec("mlp", KWARGS))
    for step in (0, 10):
        checkpointer.save_checkpoint(model, step)
    assert_one_error(ndt("track", tmp_path / "ckpts", "-o", tmp_path / "r.h5"), "ndt trust")
    assert ndt("trust", tmp_path / "ckpts").exit_code == 0
    result = ndt("track", tmp_path / "ckpts", "-o", tmp_path / "r.h5", "--quiet")
    assert result.exit_code == 0, result.stderr


@pytest.fixture
def shared_results(tmp_path) -> Path:
    """A results file whose provenance names a factory in models.py, as a colleague sends it."""
    ckpts = _run(tmp_path, "")
    (tmp_path / "models.py").write_text(MODELS_PY)
    spec = ModelSpec(f"{tmp_path / 'models.py'}:build", KWARGS)
    track(ckpts, out=tmp_path / "shared.h5", model=spec, probe=tmp_path / "probe.safetensors",
          device="cpu")  # fmt: skip
    (tmp_path / "imported.txt").unlink()
    return tmp_path / "shared.h5"


def test_compare_refuses_a_callable_named_by_a_results_file(ndt, shared_results):
    models = shared_results.parent / "models.py"
    result = ndt("compare", "--results", shared_results, "--before", 0, "--after", 20)
    assert_one_error(result, f"the provenance of {shared_results} names code to run")
    assert f"the Python file {models}" in result.stderr and "--trust-code" in result.stderr
    assert not (shared_results.parent / "imported.txt").exists()


def test_compare_runs_it_with_trust_code(ndt, shared_results, tmp_path):
    result = ndt("compare", "--results", shared_results, "--before", 0, "--after", 20,
                 "--trust-code", "--json", tmp_path / "c.json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert (shared_results.parent / "imported.txt").exists()
    assert "Before: step 0" in result.stdout


def test_a_model_typed_with_track_may_be_rebuilt_by_compare(ndt, tmp_path):
    ckpts = _run(tmp_path, "")
    (tmp_path / "models.py").write_text(MODELS_PY)
    import json

    result = ndt("track", ckpts, "-o", tmp_path / "r.h5", "--quiet",
                 "--model", f"{tmp_path / 'models.py'}:build", "--model-kwargs", json.dumps(KWARGS),
                 "--probe", tmp_path / "probe.safetensors")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    result = ndt("compare", "--results", tmp_path / "r.h5", "--before", 0, "--after", 10)
    assert result.exit_code == 0, result.stderr
    assert np.isfinite(read_results(tmp_path / "r.h5").metrics["stable_rank"]).all()
