"""Forward hooks are scoped, and ActivationCapture behaves as the reference API says."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ndt.core.hooks import ActivationCapture, first_tensor, forward_hooks, resolve_modules
from ndt.errors import NdtError


def toy() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))


def test_forward_hooks_are_removed_even_on_error():
    model = toy()
    seen = []
    with pytest.raises(RuntimeError):
        with forward_hooks({"0": model[0]}, lambda name, out: seen.append(out.shape)):
            model(torch.zeros(2, 4))
            raise RuntimeError("boom")
    assert seen == [torch.Size([2, 5])]
    assert not model[0]._forward_hooks
    model(torch.zeros(2, 4))
    assert len(seen) == 1


def test_first_tensor_of_structured_outputs():
    t = torch.ones(1)
    assert first_tensor((None, t)) is t
    assert first_tensor({"last_hidden_state": t, "x": 1}) is t
    assert first_tensor(["a", (t,)]) is t
    assert first_tensor(("a",)) is None


def test_resolve_modules_keeps_order_and_names_missing():
    model = toy()
    assert list(resolve_modules(model, ["2", "0"])) == ["2", "0"]
    with pytest.raises(NdtError, match="has no layer 'fc9'"):
        resolve_modules(model, ["fc9"])


def test_activation_capture_reference_names():
    model = toy()
    capture = ActivationCapture()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    capture.register_hooks(model, linears)
    x = torch.randn(6, 4)
    model(x)
    # ndtracker's keys; the reference document's "_out" spelling reads the same tensors.
    assert set(capture.get_all_activations()) == {"Linear_0", "Linear_1"}
    torch.testing.assert_close(capture.get_activation("Linear_0"), model[0](x))
    torch.testing.assert_close(capture.get_activation("Linear_0_out"), model[0](x))
    torch.testing.assert_close(capture.get_activation("Linear_1_out"), model(x))
    assert capture.get_activation("Linear_2_out") is None
    capture.clear_activations()
    assert capture.get_activation("Linear_0_out") is None
    capture.remove_hooks()
    model(x)
    assert capture.get_all_activations() == {}


def test_activation_capture_context_manager_and_custom_names():
    model = toy()
    with ActivationCapture() as capture:
        capture.register_hooks(model, [model[1]], layer_names=["relu"])
        model(torch.randn(2, 4))
        assert (capture.get_activation("relu") >= 0).all()
    assert not model[1]._forward_hooks
    with pytest.raises(ValueError, match="not a module of the given model"):
        ActivationCapture().register_hooks(model, [nn.Linear(1, 1)])


def test_activation_capture_pause_and_resume():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    capture = ActivationCapture()
    capture.register_hooks(model, [model[0], model[2]])
    x = torch.randn(5, 3)
    capture.pause()
    model(x)
    assert capture.hooks == [] and capture.activations == {}
    assert all(not m._forward_hooks for m in model.modules())
    capture.resume()
    capture.resume()  # idempotent: one hook per layer
    assert [len(m._forward_hooks) for m in model] == [1, 0, 1]
    model(x)
    torch.testing.assert_close(capture.get_activation("Linear_0"), model[0](x).detach())
    torch.testing.assert_close(capture.get_activation("Linear_1_out"), model(x).detach())
    capture.remove_hooks()
    capture.resume()  # nothing registered any more
    assert capture.hooks == []
