"""The rows rule: which rows of which features a layer's output (B, ...) gives the spectrum
and the before/after analyses.

- (B, D): B rows of D features.
- (B, C, H, W) and other outputs of four or more axes: B rows of C·H·W features.
- (B, X, Y): a sequence (B, T, D) of tokens, unless the layer is channels-first (B, C, L),
  which gives B rows of C·L features. A layer is channels-first when it is a 1-d
  convolution, batch/instance norm or pooling, or when its output comes straight from one:
  a module without parameters of its own (an activation, a dropout) whose nearest module
  with parameters earlier in model order is channels-first, or a container whose last
  module is (`channels_first_layers`). So the ReLU after an ``nn.Conv1d`` is read as
  (B, C, L), and the blocks of a transformer as tokens.
- A sequence gives rows as ``--tokens`` says: ``all`` (every position), or one row per
  sample: ``first``, ``last``, ``mean`` or ``pos:K`` (position K; negative K counts from
  the end). With an ``attention_mask`` (B, T) in the probe, padded positions (mask 0) are
  never rows: ``all`` keeps the unpadded positions, ``first``/``last`` take the first/last
  unpadded position, ``mean`` averages the unpadded positions, and ``pos:K`` must not
  fall on padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import nn

from ndt.errors import NdtError

MASK_KEY = "attention_mask"
TOKEN_CHOICES = ("all", "first", "last", "mean", "pos:K")
CHANNELS_FIRST = (
    nn.Conv1d, nn.ConvTranspose1d, nn.BatchNorm1d, nn.InstanceNorm1d, nn.MaxPool1d,
    nn.AvgPool1d, nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d, nn.LPPool1d,
)  # fmt: skip


@dataclass(frozen=True)
class TokenRule:
    """How a sequence output (B, T, D) becomes rows: ``kind`` is all, first, last, mean or
    pos (then ``position`` is K)."""

    kind: str = "all"
    position: int = 0

    def describe(self) -> str:
        """The ``--tokens`` value, e.g. ``pos:-2``."""
        return f"pos:{self.position}" if self.kind == "pos" else self.kind

    @property
    def pooled(self) -> bool:
        """One row per sample."""
        return self.kind != "all"


def parse_tokens(text: str) -> TokenRule:
    """Parse ``--tokens``: all, first, last, mean or pos:K.

    Raises:
        NdtError: for any other value.
    """
    if text in ("all", "first", "last", "mean"):
        return TokenRule(text)
    if text.startswith("pos:"):
        try:
            return TokenRule("pos", int(text[4:]))
        except ValueError:
            pass
    raise NdtError(f"--tokens '{text}' is not one of {', '.join(TOKEN_CHOICES)}")


def _own_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False))


def channels_first_layers(model: nn.Module, names: Sequence[str]) -> set[str]:
    """Those of `names` whose 3-D output is (B, C, L) rather than (B, T, D) (module doc)."""
    order = [(name, module) for name, module in model.named_modules()]
    index = {name: i for i, (name, _) in enumerate(order)}
    leaves = [i for i, (_, module) in enumerate(order) if not any(module.children())]

    def decides(i: int) -> bool | None:
        module = order[i][1]
        if isinstance(module, CHANNELS_FIRST):
            return True
        return False if _own_parameters(module) else None

    chosen = set()
    for name in names:
        i = index[name]
        descendants = [j for j in leaves if j >= i and order[j][0].startswith(f"{name}.")]
        start = descendants[-1] if descendants and name else i
        for j in sorted((j for j in leaves if j <= start), reverse=True):
            verdict = decides(j)
            if verdict is not None:
                if verdict:
                    chosen.add(name)
                break
    return chosen


def _valid(mask: torch.Tensor | None, shape: torch.Size) -> torch.Tensor | None:
    if mask is None:
        return None
    if tuple(mask.shape) != tuple(shape[:2]):
        raise NdtError(
            f"the probe's attention_mask has shape {tuple(mask.shape)} but a sequence layer "
            f"gives {tuple(shape)}; pass --tokens only for layers over the input positions"
        )
    valid = mask.bool()
    if not valid.any(1).all():
        raise NdtError("a probe sample's attention_mask is all zeros: it has no position")
    return valid


def layer_rows(
    output: torch.Tensor,
    *,
    channels_first: bool = False,
    mask: torch.Tensor | None = None,
    rule: TokenRule = TokenRule(),
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A layer output (B, ...) as its (n_rows, n_features) matrix, by the rows rule, and
    each row's sample for sequences (None when rows are samples).

    Args:
        output: The layer output.
        channels_first: Read a 3-D output as (B, C, L) (see `channels_first_layers`).
        mask: The probe's attention_mask (B, T) for these samples, or None.
        rule: ``--tokens``, for sequence outputs.
    """
    if output.ndim == 3 and not channels_first:
        rows, samples = sequence_rows(output, mask, rule)
        return rows, None if rule.pooled else samples
    if output.ndim == 0:
        raise NdtError("a layer returned a scalar, which has no samples; choose another")
    if output.ndim == 1:
        return output.reshape(-1, 1), None
    return output.reshape(output.shape[0], -1), None


def sequence_rows(
    output: torch.Tensor, mask: torch.Tensor | None, rule: TokenRule
) -> tuple[torch.Tensor, torch.Tensor]:
    """A sequence output (B, T, D) as rows (n_rows, D), and each row's sample (n_rows,).

    Args:
        output: The layer output, shape (B, T, D).
        mask: The probe's attention_mask for these samples, shape (B, T), or None.
        rule: What `--tokens` asked for.

    Raises:
        NdtError: if the mask does not match, a sample is all padding, or ``pos:K`` is
            outside the sequence or on padding.
    """
    batch, length, width = output.shape
    samples = torch.arange(batch, device=output.device)
    valid = _valid(mask.to(output.device) if mask is not None else None, output.shape)
    if rule.kind == "all":
        if valid is None:
            return output.reshape(-1, width), samples.repeat_interleave(length)
        return output[valid], samples.repeat_interleave(valid.sum(1))
    if rule.kind == "mean":
        # Averages in at least float32, whatever the forward dtype.
        values = output if output.dtype in (torch.float32, torch.float64) else output.float()
        if valid is None:
            return values.mean(1), samples
        weights = valid.to(values.dtype).unsqueeze(-1)
        return (values * weights).sum(1) / weights.sum(1), samples
    if rule.kind == "pos":
        position = rule.position if rule.position >= 0 else length + rule.position
        if not 0 <= position < length:
            raise NdtError(f"--tokens pos:{rule.position} is outside sequences of {length}")
        if valid is not None and not valid[:, position].all():
            n_padded = int((~valid[:, position]).sum())
            raise NdtError(
                f"--tokens pos:{rule.position} is padding in {n_padded} probe samples; "
                "use last or first, which follow the attention_mask"
            )
        positions = torch.full((batch,), position, device=output.device)
    elif valid is None:
        positions = torch.full((batch,), 0 if rule.kind == "first" else length - 1)
    elif rule.kind == "first":
        positions = valid.int().argmax(1)
    else:
        positions = length - 1 - valid.flip(1).int().argmax(1)
    return output[samples, positions.to(output.device)], samples


class HookRows:
    """The rows rule applied in forward hooks, knowing which probe chunk is in flight."""

    def __init__(self, model: nn.Module, layers: Sequence[str], tokens: TokenRule | str) -> None:
        self.rule = parse_tokens(tokens) if isinstance(tokens, str) else tokens
        self._model, self._layers = model, list(layers)
        self.mask: torch.Tensor | None = None
        self.start = 0

    @cached_property
    def channels_first(self) -> set[str]:
        """The layers whose 3-D output is (B, C, L); found on first use, since a model
        walk costs more than a small probe's forward and only 3-D outputs need it."""
        return channels_first_layers(self._model, self._layers)

    def chunk(self, start: int, extras: dict[str, torch.Tensor]) -> None:
        """Called before each chunk's forward pass."""
        self.start, self.mask = start, extras.get(MASK_KEY)

    def apply(self, name: str, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The output as is, or, for a sequence to pool or unpad, its (n_rows, D) rows and
        each row's probe sample."""
        if output.ndim != 3 or name in self.channels_first:
            return output, None
        if not self.rule.pooled and self.mask is None:
            return output, None
        rows, samples = sequence_rows(output, self.mask, self.rule)
        return rows, samples + self.start
