"""Hugging Face transformers models: build a run's model from its ``config.json`` and load
each checkpoint through transformers' own loading rules.

A folder saved by ``save_pretrained`` or transformers' ``Trainer`` (``config.json`` beside
``model.safetensors`` or its shards, possibly in ``checkpoint-N/`` children) needs no model
code: the class is the one ``config.json`` names in ``architectures`` (``AutoModel`` when
that class is not in transformers), built from the config. Each checkpoint's tensors go
through ``from_pretrained(None, config=..., state_dict=...)``, so tied weights, keys renamed
between transformers versions and checkpoint dtypes are handled as transformers handles
them; a missing, unexpected or mis-shaped key still stops the run, naming the keys, so a
randomly initialised model is never analysed. A checkpoint's own code (``auto_map``,
``trust_remote_code``) is never run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from ndt.errors import ModelSpecError, WeightsMismatchError, describe
from ndt.extras import import_transformers
from ndt.io.checkpoints import refuse_integer_weights

CONFIG_NAME = "config.json"


def _is_hf_config(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and ("model_type" in data or "architectures" in data)


def find_config(directory: str | Path) -> Path | None:
    """The transformers ``config.json`` of a run: the folder's own, else the shallowest one
    in its subfolders (``checkpoint-N/config.json``); None when there is none.

    A ``config.json`` counts only if it names a ``model_type`` or ``architectures``.
    """
    root = Path(directory)
    if not root.is_dir():
        return None
    candidates = sorted(
        root.rglob(CONFIG_NAME), key=lambda p: (len(p.relative_to(root).parts), str(p))
    )
    return next((path for path in candidates if _is_hf_config(path)), None)


@contextmanager
def _quiet(transformers: ModuleType) -> Iterator[None]:
    """Silence transformers' logging and progress bars (the library never prints; problems
    come back as exceptions or loading info instead)."""
    logging = transformers.utils.logging
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def read_config(path: str | Path) -> object:
    """Read a ``config.json`` into a transformers config, refusing custom code.

    Raises:
        ModelSpecError: if the file is unreadable, needs custom code (``auto_map``), or names
            a model type this transformers does not know.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelSpecError(f"cannot read {path}: {describe(exc)}") from None
    if not isinstance(raw, dict):
        raise ModelSpecError(f"{path} is not a JSON object")
    if "auto_map" in raw:
        raise ModelSpecError(
            f"{path} needs the checkpoint's own code (auto_map: {', '.join(raw['auto_map'])}); "
            "ndt never runs it (trust_remote_code stays off): pass --model with a factory instead"
        )
    transformers = import_transformers()
    try:
        with _quiet(transformers):
            return transformers.AutoConfig.from_pretrained(
                path.parent, local_files_only=True, trust_remote_code=False
            )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelSpecError(f"transformers cannot read {path}: {describe(exc)}") from None


def model_class(config: object) -> type:
    """The class ``config.architectures`` names, if transformers has it; else ``AutoModel``."""
    transformers = import_transformers()
    for name in (getattr(config, "architectures", None) or [])[:1]:
        found = getattr(transformers, str(name), None)
        if isinstance(found, type) and issubclass(found, transformers.PreTrainedModel):
            return found
    return transformers.AutoModel


def build_hf_model(directory: str | Path) -> nn.Module:
    """Build, with random weights, the model of the run in `directory` from its config.json.

    Raises:
        ModelSpecError: if there is no config.json, transformers is missing, or the config
            cannot be read or built.
    """
    path = find_config(directory)
    if path is None:
        raise ModelSpecError(
            f"--model hf: no config.json in {directory} or its checkpoint folders (the file "
            "that save_pretrained and Trainer write beside the weights)"
        )
    config = read_config(path)
    transformers = import_transformers()
    cls = model_class(config)
    try:
        with _quiet(transformers):
            if cls is transformers.AutoModel:
                return cls.from_config(config, trust_remote_code=False)
            return cls(config)
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise ModelSpecError(f"cannot build {cls.__name__} from {path}: {describe(exc)}") from None


def is_hf_model(model: nn.Module) -> bool:
    """Whether `model` is a transformers ``PreTrainedModel`` (without importing transformers)."""
    import sys

    transformers = sys.modules.get("transformers")
    return transformers is not None and isinstance(model, transformers.PreTrainedModel)


def _names(keys: object, limit: int = 3) -> str:
    names = sorted(str(k if not isinstance(k, tuple) else k[0]) for k in keys)
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def load_hf_weights(model: nn.Module, state: dict[str, torch.Tensor], checkpoint_name: str) -> None:
    """Load a checkpoint's tensors into a transformers model through ``from_pretrained``.

    The tensors are cast to the model's dtype (a bf16 checkpoint runs in float32 when the
    model is float32).

    Raises:
        WeightsMismatchError: naming the checkpoint and the missing, unexpected or
            mis-shaped keys, or the integer tensors given for float weights.
    """
    transformers = import_transformers()
    refuse_integer_weights(model, state, checkpoint_name)
    # transformers builds the loaded copy on the CPU; the tensors meet it there, and
    # load_state_dict below copies them onto the model's device.
    state = {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in state.items()}
    cls = type(model)
    try:
        with _quiet(transformers):
            loaded, info = cls.from_pretrained(
                None,
                config=model.config,
                state_dict=state,
                dtype=model.dtype,
                output_loading_info=True,
                ignore_mismatched_sizes=True,
            )
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise WeightsMismatchError(
            f"{checkpoint_name} does not load into {cls.__name__}: {describe(exc)}"
        ) from exc
    problems = [
        f"{label} {_names(info.get(key) or ())}"
        for key, label in (
            ("missing_keys", "missing"),
            ("unexpected_keys", "unexpected"),
            ("mismatched_keys", "shape mismatch"),
        )
        if info.get(key)
    ]
    if problems:
        raise WeightsMismatchError(
            f"{checkpoint_name} does not fit {cls.__name__}: {'; '.join(problems)}"
        )
    model.load_state_dict(loaded.state_dict(), strict=True)
