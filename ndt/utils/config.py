"""Tracker settings as YAML files."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path

from ndt.export._notice import notice

#: The tracker arguments a configuration file holds by default.
_DEFAULT_KEYS = ("sampling_frequency", "enable_jump_detection", "jump_window_size",
                 "jump_z_threshold")  # fmt: skip


def get_default_config() -> dict[str, object]:
    """`HighFrequencyTracker`'s defaults for the settings a config file usually holds,
    read from its signature (so they cannot drift apart)."""
    from ndt.core.tracker import HighFrequencyTracker

    parameters = inspect.signature(HighFrequencyTracker).parameters
    return {key: parameters[key].default for key in _DEFAULT_KEYS}


def save_config(config: Mapping[str, object], path: str | Path, verbose: bool = True) -> Path:
    """Write `config` as block-style YAML, keys in insertion order."""
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False))
    notice(f"Saved configuration to {path}", verbose, logger="ndt.utils")
    return path


def load_config(path: str | Path) -> dict[str, object]:
    """Read a YAML configuration file.

    Raises:
        FileNotFoundError: if `path` does not exist.
        yaml.YAMLError: if it is not valid YAML.
    """
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Config file not found: {path}")
    return yaml.safe_load(path.read_text()) or {}
