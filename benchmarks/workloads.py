"""The three benchmark workloads of issue 7, built locally: model, probe and checkpoints.

Each workload is a run folder that `ndt track` reads with no other option (checkpoints
``step_XXXXXXXX.safetensors`` plus an ``ndt.toml`` naming the model and the probe), and a
parallel folder of ``.pt`` copies of the same weights for the naive baseline. Weights are a
seeded random initialisation followed by small seeded random steps, so consecutive
checkpoints differ as those of a training run do; nothing is downloaded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ndt.io.checkpoints import save_checkpoint
from ndt.io.manifest import ModelSpec, write_manifest
from ndt.io.probe import save_probe
from ndt.models.spec import build_model

THIS_FILE = Path(__file__).resolve()


def vgg(
    in_channels: int = 3, channels: Sequence[int] = (16, 32, 64, 128), n_classes: int = 10
) -> nn.Sequential:
    """A VGG-style convnet for 32x32 images: (3x3 conv, ReLU, 2x2 max-pool) per stage, then a
    linear head; with the default four stages the tracked outputs are 16x32x32, 32x16x16,
    64x8x8 and 128x4x4 feature maps and the logits."""
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    width, size = in_channels, 32
    for index, out in enumerate(channels, start=1):
        modules[f"conv{index}"] = nn.Conv2d(width, out, kernel_size=3, padding=1)
        modules[f"relu{index}"] = nn.ReLU()
        if index < len(channels):
            modules[f"pool{index}"] = nn.MaxPool2d(2)
            size //= 2
        width = out
    modules["flatten"] = nn.Flatten()
    modules["head"] = nn.Linear(width * size * size, n_classes)
    return nn.Sequential(modules)


@dataclass(frozen=True)
class Workload:
    """One benchmark case.

    Attributes:
        name: Short label (mlp, cnn, transformer).
        spec: The model to build.
        n_checkpoints: Checkpoints in the full benchmark.
        probe_shape: Shape of the probe inputs; the first entry is the number of samples.
        description: One line for the report.
        token_vocab: For token inputs, the vocabulary size (inputs are int64 ids); else 0.
    """

    name: str
    spec: ModelSpec
    n_checkpoints: int
    probe_shape: tuple[int, ...]
    description: str
    token_vocab: int = 0


WORKLOADS: dict[str, Workload] = {
    "mlp": Workload(
        "mlp",
        ModelSpec("mlp", {"in_features": 784, "hidden": [1024, 1024, 1024], "n_classes": 10}),
        50,
        (4096, 784),
        "MLP 784-1024-1024-1024-10, probe 4096",
    ),
    "cnn": Workload(
        "cnn",
        ModelSpec(f"{THIS_FILE}:vgg", {"channels": [16, 32, 64, 128]}),
        30,
        (512, 3, 32, 32),
        "CNN 4 conv (16-32-64-128) on 32x32x3, probe 512",
    ),
    "transformer": Workload(
        "transformer",
        ModelSpec(
            "transformer",
            {"vocab_size": 1024, "max_len": 128, "d_model": 512, "n_layers": 8, "n_heads": 8},
        ),
        40,
        (64, 128),
        "GPT-style d_model 512, 8 layers, d_mlp 2048, vocab 1024, probe 64 x 128 tokens",
        token_vocab=1024,
    ),
}


@dataclass(frozen=True)
class BuiltWorkload:
    """Paths of a built workload."""

    workload: Workload
    ckpt_dir: Path
    pt_dir: Path
    probe_path: Path
    n_checkpoints: int
    n_samples: int


def _probe_inputs(workload: Workload, n_samples: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    shape = (n_samples, *workload.probe_shape[1:])
    if workload.token_vocab:
        return torch.randint(0, workload.token_vocab, shape, generator=generator)
    return torch.rand(shape, generator=generator)


def _perturb(model: nn.Module, generator: torch.Generator, scale: float = 0.02) -> None:
    """One pseudo-training step: every parameter moves by `scale` of its own spread."""
    with torch.no_grad():
        for parameter in model.parameters():
            spread = parameter.std() if parameter.numel() > 1 else parameter.abs() + 1e-3
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.add_(noise * (scale * float(spread) + 1e-4))


def build_workload(
    workload: Workload,
    root: str | Path,
    *,
    n_checkpoints: int | None = None,
    n_samples: int | None = None,
    seed: int = 0,
    pt_copies: bool = True,
) -> BuiltWorkload:
    """Write the run folder (safetensors + ndt.toml + probe) and the .pt copies under `root`.

    Args:
        workload: What to build.
        root: Folder to write into (created).
        n_checkpoints: Override the workload's checkpoint count.
        n_samples: Override the probe's sample count.
        seed: Seed of the initialisation, the steps and the probe.
        pt_copies: Also write the ``.pt`` copies (the naive baseline's input).
    """
    root = Path(root) / workload.name
    ckpt_dir, pt_dir = root / "ckpts", root / "pt"
    pt_dir.mkdir(parents=True, exist_ok=True)
    count = n_checkpoints or workload.n_checkpoints
    samples = n_samples or workload.probe_shape[0]
    probe_path = root / "probe.safetensors"
    save_probe(probe_path, _probe_inputs(workload, samples, seed + 1))
    torch.manual_seed(seed)
    model = build_model(workload.spec)
    generator = torch.Generator().manual_seed(seed + 2)
    for index in range(count):
        step = index * 100
        if index:
            _perturb(model, generator)
        save_checkpoint(model, ckpt_dir, step)
        if pt_copies:
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            torch.save(state, pt_dir / f"step_{step:08d}.pt")
    write_manifest(ckpt_dir, workload.spec, probe=probe_path)
    return BuiltWorkload(workload, ckpt_dir, pt_dir, probe_path, count, samples)
