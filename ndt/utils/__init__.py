"""The reference API's helpers: tracker configuration files and a logger set-up."""

from ndt.utils.config import get_default_config, load_config, save_config
from ndt.utils.logging import setup_logger

__all__ = ["get_default_config", "load_config", "save_config", "setup_logger"]
