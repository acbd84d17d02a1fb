"""Which model a run uses, in which precision, and loading a checkpoint's weights into it."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ndt.errors import NdtError
from ndt.io.checkpoints import Checkpoint, load_weights, read_state_dict
from ndt.io.manifest import ModelSpec, read_manifest
from ndt.models.hf import find_config, is_hf_model, load_hf_weights
from ndt.models.precision import DTYPE_NAMES
from ndt.models.spec import HF_TARGET

#: ``--dtype`` values: the precision of the forward passes, whatever the checkpoints' dtype.
DTYPES: dict[str, torch.dtype] = {name: getattr(torch, name) for name in DTYPE_NAMES}


def resolve_dtype(dtype: str) -> torch.dtype:
    """The torch dtype of a ``--dtype`` value.

    Raises:
        NdtError: for a name not in `DTYPES`.
    """
    if dtype not in DTYPES:
        raise NdtError(f"--dtype '{dtype}' is not one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def run_model_spec(ckpt_dir: str | Path, model: ModelSpec | None = None) -> ModelSpec | None:
    """The model of a run: `model` if given, else its ndt.toml's, else ``hf`` when the
    folder (or a checkpoint folder in it) holds a transformers config.json; else None."""
    if model is not None:
        return model
    manifest = read_manifest(ckpt_dir)
    if manifest is not None and manifest.model is not None:
        return manifest.model
    return ModelSpec(HF_TARGET) if find_config(ckpt_dir) is not None else None


def apply_weights(model: nn.Module, state: dict[str, torch.Tensor], checkpoint_name: str) -> None:
    """Load a checkpoint's tensors into `model` strictly, cast to the model's dtype: through
    transformers' loading rules for a transformers model (`ndt.models.hf.load_hf_weights`), else
    `ndt.io.checkpoints.load_weights`."""
    if is_hf_model(model):
        load_hf_weights(model, state, checkpoint_name)
    else:
        load_weights(model, state, checkpoint_name)


def load_checkpoint(model: nn.Module, checkpoint: Checkpoint, device: torch.device) -> None:
    """Load a checkpoint's weights into `model` strictly (see `apply_weights`)."""
    apply_weights(model, read_state_dict(checkpoint, device), checkpoint.name)
