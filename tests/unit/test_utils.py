"""ndt.utils: configuration files and logger set-up."""

from __future__ import annotations

import inspect
import logging

import pytest

from ndt import HighFrequencyTracker
from ndt.utils import get_default_config, load_config, save_config, setup_logger


def test_default_config_is_the_trackers_signature():
    parameters = inspect.signature(HighFrequencyTracker).parameters
    config = get_default_config()
    assert config == {key: parameters[key].default for key in config}
    assert config["sampling_frequency"] == 1


def test_config_round_trip_and_missing_file(tmp_path):
    config = {"sampling_frequency": 5, "layers": ["a", "b"], "jump_z_threshold": 2.5}
    path = save_config(config, tmp_path / "c.yaml", verbose=False)
    assert load_config(path) == config
    assert list(load_config(path)) == list(config)
    with pytest.raises(FileNotFoundError, match="Config file not found"):
        load_config(tmp_path / "none.yaml")


def test_setup_logger_replaces_its_handlers(tmp_path):
    log_file = tmp_path / "run.log"
    logger = setup_logger("ndt.test.utils", level=logging.WARNING, log_file=log_file,
                          format_string="%(levelname)s:%(message)s")  # fmt: skip
    logger = setup_logger("ndt.test.utils", level=logging.WARNING, log_file=log_file,
                          format_string="%(levelname)s:%(message)s")  # fmt: skip
    assert len(logger.handlers) == 2
    logger.info("hidden")
    logger.warning("shown")
    for handler in logger.handlers:
        handler.flush()
        handler.close()
    logger.handlers = []
    assert log_file.read_text() == "WARNING:shown\n"
