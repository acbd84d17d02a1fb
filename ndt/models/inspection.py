"""What `ndt layers` reports: a model's architecture, the layers tracked by default or by
pattern, and whether a checkpoint loads into it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ndt.architectures import default_layers_notices, detect_family, select_layers
from ndt.errors import ModelSpecError
from ndt.io.checkpoints import Checkpoint, read_state_dict
from ndt.io.manifest import MANIFEST_NAME, ModelSpec, read_manifest
from ndt.models.loading import apply_weights, run_model_spec
from ndt.models.spec import build_model
from ndt.models.trust import require_consent


@dataclass(frozen=True)
class LayerInfo:
    """One module of the model: its qualified name, class, parameter count (its own and its
    submodules'), and whether it is tracked."""

    name: str
    kind: str
    n_parameters: int
    tracked: bool


@dataclass(frozen=True)
class LayerListing:
    """The answer of `list_layers`."""

    spec: ModelSpec
    architecture: str
    layers: list[LayerInfo]
    checkpoint: str | None
    notices: tuple[str, ...] = ()


def list_layers(
    spec: ModelSpec | None = None,
    *,
    ckpt_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
    patterns: Sequence[str] | None = None,
    trust_code: bool = False,
) -> LayerListing:
    """Build the model, load `checkpoint` into it if given, and list its modules.

    Args:
        spec: The model; None reads it from ``ckpt_dir/ndt.toml``, or takes ``hf`` when
            `ckpt_dir` holds a transformers config.json.
        ckpt_dir: Folder whose manifest names the model (and default layer patterns).
        checkpoint: A checkpoint file to load strictly, to check that it fits.
        patterns: ``--layers`` globs; None uses the architecture's default selection.
        trust_code: Consent to run the code that ``ckpt_dir/ndt.toml`` names (see
            `ndt.models.trust`); a `spec` given here needs none.

    Raises:
        ModelSpecError: if no model is given or found; CheckpointError if it does not load;
            UntrustedCodeError if the ndt.toml names code the user has not consented to.
    """
    manifest = read_manifest(ckpt_dir) if ckpt_dir is not None else None
    if spec is None and manifest is not None and manifest.model is not None:
        require_consent(
            manifest.model, source=str(Path(ckpt_dir) / MANIFEST_NAME), folder=ckpt_dir,
            trust_code=trust_code,
        )  # fmt: skip
    if ckpt_dir is not None:
        spec = run_model_spec(ckpt_dir, spec)
    if spec is None:
        raise ModelSpecError(
            "no model: pass --model, or a checkpoint folder with an ndt.toml or a config.json"
        )
    model = build_model(spec, ckpt_dir or (Path(checkpoint).parent if checkpoint else None))
    if checkpoint is not None:
        path = Path(checkpoint)
        apply_weights(model, read_state_dict(Checkpoint(0, path, (path,))), path.name)
    patterns = list(patterns or (manifest.layers if manifest else ()))
    chosen = set(select_layers(model, patterns or None))
    modules = [
        LayerInfo(
            name=name,
            kind=type(module).__name__,
            # Recursive (a block counts its submodules'), each shared tensor once.
            n_parameters=sum(p.numel() for p in module.parameters()),
            tracked=name in chosen,
        )
        for name, module in model.named_modules()
        if name
    ]
    return LayerListing(
        spec,
        detect_family(model),
        modules,
        str(checkpoint) if checkpoint else None,
        () if patterns else default_layers_notices(model),
    )
