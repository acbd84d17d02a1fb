"""Resolve a model specification (zoo name, ``hf``, ``module:factory``, ``file.py:factory``)
into an nn.Module; the spec itself and the ``ndt.toml`` that records it are
`ndt.io.manifest`'s."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path

from torch import nn

from ndt.errors import ModelSpecError, describe
from ndt.io.manifest import ModelSpec
from ndt.models.zoo import ZOO, build_zoo_model

#: The built-in kind for Hugging Face models: built from the checkpoint folder's config.json.
HF_TARGET = "hf"


def parse_model_kwargs(text: str | None) -> dict[str, object]:
    """Parse ``--model-kwargs`` JSON into a dict."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelSpecError(f"--model-kwargs is not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise ModelSpecError("--model-kwargs must be a JSON object such as '{\"hidden\": [64]}'")
    return value


def model_spec(target: str | None, kwargs_json: str | None = None) -> ModelSpec | None:
    """The spec given by ``--model`` and ``--model-kwargs``, or None when no model is given.

    A factory in a Python file is recorded by its absolute path, so that the results file
    names the same file from any working folder (``ndt compare`` elsewhere).

    Raises:
        ModelSpecError: if the JSON is malformed, or kwargs come without a model.
    """
    kwargs = parse_model_kwargs(kwargs_json)
    if target is None:
        if kwargs:
            raise ModelSpecError("--model-kwargs needs --model")
        return None
    location, _, name = target.rpartition(":")
    if location.endswith(".py"):
        target = f"{Path(location).resolve()}:{name}"
    return ModelSpec(target, kwargs)


def _load_factory(target: str) -> object:
    location, _, name = target.rpartition(":")
    if not location.strip() or not name.isidentifier():
        raise ModelSpecError(
            f"model '{target}' is not 'package.module:factory' or 'file.py:factory'"
        )
    if location.endswith(".py"):
        path = Path(location)
        if not path.is_file():
            raise ModelSpecError(f"model file {path} does not exist")
        module_name = f"_ndt_user_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ModelSpecError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ModelSpecError(f"importing {path} failed: {describe(exc)}") from exc
    else:
        try:
            module = importlib.import_module(location)
        except (ImportError, ValueError, TypeError) as exc:  # TypeError: a relative name
            raise ModelSpecError(f"cannot import module '{location}': {describe(exc)}") from exc
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ModelSpecError(f"'{name}' in '{location}' is not a callable")
    return factory


def build_model(spec: ModelSpec, folder: str | Path | None = None) -> nn.Module:
    """Build the model that `spec` names.

    Args:
        spec: The model.
        folder: The checkpoint folder, whose config.json builds a ``hf`` model.

    Raises:
        ModelSpecError: if the target cannot be imported, called, or returns no nn.Module.
    """
    if spec.target == HF_TARGET:
        if spec.kwargs:
            raise ModelSpecError("--model hf takes no --model-kwargs: config.json says it all")
        if folder is None:
            raise ModelSpecError("--model hf needs a checkpoint folder holding a config.json")
        from ndt.models.hf import build_hf_model

        return build_hf_model(folder)
    if ":" not in spec.target:
        if spec.target not in ZOO:
            raise ModelSpecError(
                f"model '{spec.target}' is neither a zoo architecture ({', '.join(ZOO)}), "
                "'hf' nor 'package.module:factory' / 'file.py:factory'"
            )
        return build_zoo_model(spec.target, **spec.kwargs)
    factory = _load_factory(spec.target)
    try:
        model = factory(**spec.kwargs)
    except Exception as exc:
        raise ModelSpecError(f"calling {spec.target} failed: {describe(exc)}") from exc
    if not isinstance(model, nn.Module):
        raise ModelSpecError(f"{spec.target} returned {type(model).__name__}, not an nn.Module")
    return model
