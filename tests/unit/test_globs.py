"""`--layers` globs: `*` within one dotted level, `**` across levels."""

from __future__ import annotations

import pytest

from ndt.core.layer_globs import layer_matches


@pytest.mark.parametrize(
    ("name", "pattern", "matches"),
    [
        ("transformer.h.0", "transformer.h.*", True),
        ("transformer.h.0.attn", "transformer.h.*", False),  # fnmatch's * would cross the dot
        ("transformer.h.0.attn.c_attn", "transformer.h.**", True),
        ("transformer.h.0.mlp", "**.mlp", True),
        ("mlp", "**.mlp", True),
        ("h.0.mlpx", "**.mlp", False),
        ("a.c", "a.**.c", True),
        ("a.b.b.c", "a.**.c", True),
        ("blocks.1.attn", "blocks.[01].*", True),
        ("blocks.2.attn", "blocks.[01].*", False),
        ("blocks.2.attn", "blocks.[!01].*", True),
        ("relu1", "relu?", True),
        ("relu10", "relu?", False),
        ("fc1", "fc1", True),
        ("fc1", "fc", False),
        ("blocks.0.mlp", "blocks.0.mlp", True),
        ("blocksX0", "blocks.0", False),  # a dot is literal
    ],
)
def test_layer_matches(name, pattern, matches):
    assert layer_matches(name, pattern) is matches
