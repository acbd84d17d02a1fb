"""Consent before running code named by a file: a model factory in a folder's ``ndt.toml`` or
in a results file's provenance runs only if the user agreed to it.

A zoo architecture needs no consent: it is ndt's own code, and a file can only choose its
sizes. Anything else (``package.module:factory``, ``file.py:factory``) is arbitrary Python,
and a downloaded checkpoint folder or a colleague's results file must not be enough to run
it. The user consents in one of three ways:

- ``--trust-code`` (``trust_code=True``) for one command;
- ``ndt trust DIR`` (`trust_folder`), which records the folder and the sha256 of its
  ``ndt.toml`` in a per-user trust file; a changed ``ndt.toml`` needs consent again;
- typing the spec with ``--model``: ``ndt track`` remembers it (`remember_model`), so that
  ``ndt compare`` may later rebuild the model that the user's own results file names.

The trust file is ``$NDT_TRUST_FILE``, else ``$XDG_CONFIG_HOME/ndt/trusted.json``, else
``~/.config/ndt/trusted.json``: a JSON object ``{"version": 1, "folders": {ABS_DIR:
{"manifest_sha256": HEX, "trusted": ISO_TIME}}, "models": [{"target": T, "kwargs": {...}}]}``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ndt.errors import ModelSpecError, NdtError, describe
from ndt.io.manifest import MANIFEST_NAME, ModelSpec, read_manifest
from ndt.io.probe import file_sha256

logger = logging.getLogger(__name__)

TRUST_FILE_ENV = "NDT_TRUST_FILE"
_VERSION = 1


class UntrustedCodeError(ModelSpecError):
    """A file names code to run, and the user has not consented to running it."""


@dataclass(frozen=True)
class TrustedFolder:
    """What `trust_folder` recorded.

    Attributes:
        path: The folder, absolute.
        manifest_sha256: The sha256 of its ``ndt.toml`` at the time of consent.
        model: The model spec its ``ndt.toml`` names, or None when it names none.
    """

    path: Path
    manifest_sha256: str
    model: ModelSpec | None


def trust_file() -> Path:
    """Where the per-user consent is kept (see the module docstring)."""
    override = os.environ.get(TRUST_FILE_ENV)
    if override:
        return Path(override)
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "ndt" / "trusted.json"


def runs_code(spec: ModelSpec) -> bool:
    """Whether building `spec` would import and call code outside ndt's model zoo.

    A Hugging Face spec (``hf:...``) is built by ndt itself and runs no file's code, unless
    its kwargs ask for the repository's own code (``trust_remote_code``).
    """
    if spec.target.startswith("hf:"):
        return bool(spec.kwargs.get("trust_remote_code"))
    return ":" in spec.target


def describe_code(spec: ModelSpec) -> str:
    """What building `spec` would run, in one line, e.g.
    ``os:system(command="rm -rf ~") (imports the module os)``."""
    location, _, name = spec.target.rpartition(":")
    arguments = ", ".join(
        f"{key}={json.dumps(value)}" for key, value in sorted(dict(spec.kwargs).items())
    )
    if location.endswith(".py"):
        return f"the Python file {location} (all of it, then {name}({arguments}))"
    return f"{spec.target}({arguments}) (imports the module {location})"


def _spec_key(spec: ModelSpec) -> dict[str, object]:
    return {"target": spec.target, "kwargs": json.loads(json.dumps(dict(spec.kwargs)))}


def _load() -> dict:
    path = trust_file()
    empty = {"version": _VERSION, "folders": {}, "models": []}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return empty
    except OSError as exc:
        raise NdtError(f"cannot read the trust file {path}: {describe(exc)}") from None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("folders", {}), dict)
        or not isinstance(data.get("models", []), list)
    ):
        raise NdtError(
            f"the trust file {path} is not an ndt trust file; delete it and give consent again"
        )
    return {**empty, **data}


def _save(data: dict) -> None:
    path = trust_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise NdtError(f"cannot write the trust file {path}: {describe(exc)}") from None


def _manifest_digest(folder: Path) -> str | None:
    manifest = folder / MANIFEST_NAME
    return file_sha256(manifest) if manifest.is_file() else None


def trust_folder(directory: str | Path) -> TrustedFolder:
    """Consent to the code that ``directory/ndt.toml`` names, as the file stands now.

    Raises:
        NdtError: if the folder has no ``ndt.toml``, it is not valid, or the trust file
            cannot be written.
    """
    folder = Path(directory).resolve()
    manifest = read_manifest(folder)
    if manifest is None:
        raise NdtError(f"{directory} has no {MANIFEST_NAME}; there is nothing to trust")
    digest = file_sha256(manifest.path)
    data = _load()
    data["folders"][str(folder)] = {
        "manifest_sha256": digest,
        "trusted": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _save(data)
    return TrustedFolder(folder, digest, manifest.model)


def remember_model(spec: ModelSpec) -> bool:
    """Record that the user typed `spec` (``--model``), so files naming it may run it later.

    Returns:
        Whether it was recorded; a trust file that cannot be written is logged, not raised,
        since the command the user typed does not need it.
    """
    if not runs_code(spec):
        return False
    try:
        data = _load()
        key = _spec_key(spec)
        if key not in data["models"]:
            data["models"].append(key)
            _save(data)
    except NdtError as exc:
        logger.warning("%s", exc)
        return False
    return True


def is_trusted(spec: ModelSpec, folder: str | Path | None = None) -> bool:
    """Whether the user consented to `spec`: typed it before, or trusted `folder` whose
    current ``ndt.toml`` names it."""
    if not runs_code(spec):
        return True
    data = _load()
    if _spec_key(spec) in data["models"]:
        return True
    if folder is None:
        return False
    resolved = Path(folder).resolve()
    record = data["folders"].get(str(resolved))
    if not isinstance(record, dict) or record.get("manifest_sha256") != _manifest_digest(resolved):
        return False
    manifest = read_manifest(resolved)
    return manifest is not None and manifest.model == spec


def _names(folder: str | Path, spec: ModelSpec) -> bool:
    try:
        manifest = read_manifest(folder)
    except ModelSpecError:
        return False
    return manifest is not None and manifest.model == spec


def require_consent(
    spec: ModelSpec, *, source: str, folder: str | Path | None = None, trust_code: bool = False
) -> None:
    """Refuse to go on if `spec`, read from `source`, runs code the user has not agreed to.

    Args:
        spec: The model spec read from a file.
        source: That file, as the message should name it (``ckpts/ndt.toml``).
        folder: The checkpoint folder whose trusted ``ndt.toml`` may name `spec`.
        trust_code: ``--trust-code``: the user consents for this command.

    Raises:
        UntrustedCodeError: naming what would run and how to allow it.
    """
    if trust_code or is_trusted(spec, folder):
        return
    how = "pass --trust-code if you trust it"
    if folder is not None and _names(folder, spec):
        how += f", or run `ndt trust {folder}` once"
    raise UntrustedCodeError(
        f"{source} names code to run: {describe_code(spec)}; it runs only with your consent: {how}"
    )
