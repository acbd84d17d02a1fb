import numpy as np
import pytest

from ndt.analysis.separability import probe_accuracy


def test_separable_and_random_labels():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 30)
    x = np.eye(4)[labels] * 5 + rng.normal(size=(120, 4))
    good = probe_accuracy(x, labels, seed=0)
    assert good.mean > 0.95 and good.n_splits == 5 and good.chance == pytest.approx(0.25)
    noise = probe_accuracy(rng.normal(size=(120, 4)), labels, seed=0)
    assert noise.mean < 0.5


def test_single_class_is_nan():
    result = probe_accuracy(np.ones((6, 2)), np.zeros(6))
    assert np.isnan(result.mean) and result.n_splits == 0
