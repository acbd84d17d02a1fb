"""What `ndt layers` reports: a model's architecture, the layers tracked by default or by
pattern, and whether a checkpoint loads into it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ndt.architectures import detect_family, select_layers
from ndt.checkpoints import Checkpoint, load_weights, read_state_dict
from ndt.errors import ModelSpecError
from ndt.modelspec import ModelSpec, build_model, read_manifest


@dataclass(frozen=True)
class LayerInfo:
    """One module of the model: its qualified name, class, and whether it is tracked."""

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


def list_layers(
    spec: ModelSpec | None = None,
    *,
    ckpt_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
    patterns: Sequence[str] | None = None,
) -> LayerListing:
    """Build the model, load `checkpoint` into it if given, and list its modules.

    Args:
        spec: The model; None reads it from ``ckpt_dir/ndt.toml``.
        ckpt_dir: Folder whose manifest names the model (and default layer patterns).
        checkpoint: A checkpoint file to load strictly, to check that it fits.
        patterns: ``--layers`` globs; None uses the architecture's default selection.

    Raises:
        ModelSpecError: if no model is given or found; CheckpointError if it does not load.
    """
    manifest = read_manifest(ckpt_dir) if ckpt_dir is not None else None
    spec = spec or (manifest.model if manifest else None)
    if spec is None:
        raise ModelSpecError("no model: pass --model, or a checkpoint folder with an ndt.toml")
    model = build_model(spec)
    if checkpoint is not None:
        path = Path(checkpoint)
        load_weights(model, read_state_dict(Checkpoint(0, path, (path,))), path.name)
    chosen = set(
        select_layers(model, list(patterns or (manifest.layers if manifest else ())) or None)
    )
    modules = [
        LayerInfo(
            name=name,
            kind=type(module).__name__,
            n_parameters=sum(p.numel() for p in module.parameters(recurse=False)),
            tracked=name in chosen,
        )
        for name, module in model.named_modules()
        if name
    ]
    return LayerListing(
        spec, detect_family(model), modules, str(checkpoint) if checkpoint else None
    )
