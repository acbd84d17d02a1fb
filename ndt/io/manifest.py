"""The ``ndt.toml`` beside a checkpoint folder: the model spec and probe a run uses."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ndt.errors import ModelSpecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MANIFEST_NAME = "ndt.toml"


@dataclass(frozen=True)
class ModelSpec:
    """How to build the model: a zoo architecture or a factory, with keyword arguments.

    Attributes:
        target: A zoo name (``mlp``), ``package.module:factory`` or ``path/to/file.py:factory``
            (an absolute path once resolved from a manifest).
        kwargs: Keyword arguments for the factory, as JSON-compatible values.
    """

    target: str
    kwargs: Mapping[str, object] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for logs and provenance, e.g. ``mlp {"hidden": [64, 64]}``."""
        return f"{self.target} {json.dumps(dict(self.kwargs), sort_keys=True)}"


@dataclass(frozen=True)
class Manifest:
    """The contents of an ``ndt.toml``; paths are resolved against its folder."""

    path: Path
    model: ModelSpec | None
    probe: Path | None
    layers: tuple[str, ...] = ()


def read_manifest(directory: str | Path) -> Manifest | None:
    """Read ``ndt.toml`` from `directory`, or return None when there is none.

    Raises:
        ModelSpecError: if the file is not valid TOML or its tables are malformed.
    """
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ModelSpecError(f"{path} is not valid TOML: {exc}") from None
    model_table = data.get("model", {})
    model = None
    if model_table:
        kwargs = _resolve_path_kwargs(model_table.get("kwargs", {}), path.parent)
        if "arch" in model_table:
            model = ModelSpec(str(model_table["arch"]), kwargs)
        elif "factory" in model_table:
            target = str(model_table["factory"])
            location, _, name = target.rpartition(":")
            if location.endswith(".py"):
                target = f"{(path.parent / location).resolve()}:{name}"
            model = ModelSpec(target, kwargs)
        else:
            raise ModelSpecError(f"{path}: [model] needs 'arch' or 'factory'")
    probe = data.get("probe", {}).get("path")
    layers = data.get("track", {}).get("layers", [])
    return Manifest(
        path=path,
        model=model,
        probe=(path.parent / probe).resolve() if probe else None,
        layers=tuple(layers),
    )


def _resolve_path_kwargs(kwargs: Mapping[str, object], folder: Path) -> dict[str, object]:
    """String kwargs that start with ``./`` or ``../`` are paths relative to the ndt.toml:
    they are made absolute, so that the run reads the same files from any folder."""
    return {
        key: str((folder / value).resolve())
        if isinstance(value, str) and value.startswith(("./", "../"))
        else value
        for key, value in kwargs.items()
    }


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ModelSpecError(f"cannot write {type(value).__name__} into ndt.toml")


def write_manifest(
    directory: str | Path,
    model: ModelSpec,
    probe: str | Path | None = None,
    layers: Sequence[str] = (),
) -> Path:
    """Write ``ndt.toml`` so that ``ndt track DIRECTORY`` needs no other option.

    A factory given as ``file.py:name`` and the probe are written relative to `directory`.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["# Written by ndt: how `ndt track` rebuilds this run's model and probe.", "[model]"]
    if ":" in model.target:
        location, _, name = model.target.rpartition(":")
        if location.endswith(".py"):
            location = _relative(Path(location), directory)
        lines.append(f"factory = {_toml_value(f'{location}:{name}')}")
    else:
        lines.append(f"arch = {_toml_value(model.target)}")
    if model.kwargs:
        lines.append("[model.kwargs]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in model.kwargs.items()]
    if probe is not None:
        lines += ["[probe]", f"path = {_toml_value(_relative(Path(probe), directory))}"]
    if layers:
        lines += ["[track]", f"layers = {_toml_value(list(layers))}"]
    path = directory / MANIFEST_NAME
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _relative(path: Path, start: Path) -> str:
    import os

    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()
