"""Optional dependencies: imported when a feature needs them, with the command that installs
them when they are missing (ruptures' `display` does the same)."""

from __future__ import annotations

from types import ModuleType

from ndt.errors import ModelSpecError

#: Installs transformers, for Hugging Face checkpoints and text probes.
HF_INSTALL_HINT = "pip install 'ndt-replay[hf]'"


def import_transformers() -> ModuleType:
    """The transformers module.

    Raises:
        ModelSpecError: with the install command, when transformers is not installed.
    """
    try:
        import transformers
    except ImportError:
        raise ModelSpecError(
            f"Hugging Face checkpoints need the transformers package: {HF_INSTALL_HINT}"
        ) from None
    return transformers
