"""The zoo's attention against torch's own nn.MultiheadAttention."""

import pytest
import torch
from torch import nn

from ndt.core.hooks import ActivationCapture
from ndt.errors import ModelSpecError
from ndt.models.zoo import SelfAttention, Transformer


@pytest.mark.parametrize("causal", [True, False])
def test_self_attention_equals_multihead_attention(causal):
    torch.manual_seed(3)
    reference = nn.MultiheadAttention(32, 4, batch_first=True)
    torch.manual_seed(3)
    ours = SelfAttention(32, 4, causal=causal)
    # Same parameter names and the same initialisation from the same seed.
    theirs = reference.state_dict()
    assert set(ours.state_dict()) == set(theirs)
    for name, value in ours.state_dict().items():
        assert torch.equal(value, theirs[name]), name
    # Trained-looking weights, not the zero biases of the initialisation.
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(5, 7, 32)
    mask = torch.triu(torch.ones(7, 7, dtype=torch.bool), diagonal=1) if causal else None
    with torch.no_grad():
        expected = reference(x, x, x, attn_mask=mask, need_weights=False)[0]
        got = ours(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_causal_attention_does_not_look_ahead():
    torch.manual_seed(0)
    attention = SelfAttention(16, 2, causal=True).eval()
    x = torch.randn(2, 6, 16)
    changed = x.clone()
    changed[:, 4:] += 1.0
    with torch.no_grad():
        before, after = attention(x), attention(changed)
    torch.testing.assert_close(before[:, :4], after[:, :4])
    assert not torch.allclose(before[:, 4:], after[:, 4:])


def test_hooks_on_the_attention_projection_fire():
    model = Transformer(vocab_size=11, max_len=5, d_model=8, n_layers=1, n_heads=2).eval()
    modules = dict(model.named_modules())
    with ActivationCapture() as capture:
        capture.register_hooks(model, [modules["blocks.0.attn.out_proj"]], ["out_proj"])
        with torch.no_grad():
            model(torch.randint(0, 11, (3, 5)))
        assert tuple(capture.get_activation("out_proj").shape) == (3, 5, 8)


def test_heads_must_divide_the_width():
    with pytest.raises(ModelSpecError, match="multiple of n_heads"):
        SelfAttention(10, 3, causal=True)
