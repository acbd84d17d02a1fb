"""Reference §2: capture layer outputs around a training step with ActivationCapture.

Trains the zoo MLP on the digits, keeps a copy of the weights a few steps before and after
a chosen step, and captures every Linear layer's output on a fixed batch at those moments
(§2.1) and at a list of steps, saved to HDF5 with gzip (§2.2). Writes activations.h5 into
OUTPUT_DIR (default: example-output/s2).

    python docs/examples/s2_capture.py [OUTPUT_DIR]
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import h5py
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from ndt.core.hooks import ActivationCapture
from ndt.models.zoo import mlp


def train_with_snapshots(n_steps: int, keep: set[int]) -> dict[int, nn.Module]:
    """Train on digits minibatches; return copies of the model after each step in `keep`."""
    torch.manual_seed(0)
    data, target = load_digits(return_X_y=True)
    x = torch.from_numpy((data / 16.0).astype(np.float32))
    y = torch.from_numpy(target.astype(np.int64))
    model = mlp(hidden=(32, 32))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    snapshots = {}
    for step in range(n_steps):
        chosen = torch.randint(len(y), (64,), generator=generator)
        loss = nn.functional.cross_entropy(model(x[chosen]), y[chosen])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step in keep:
            snapshots[step] = copy.deepcopy(model)
    return snapshots


def capture_linear_outputs(model: nn.Module, batch: torch.Tensor) -> dict[str, np.ndarray]:
    """§2.1: outputs of every Linear layer on `batch`, named Linear_0, Linear_1, ..."""
    linear_layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    with ActivationCapture() as capture:
        capture.register_hooks(model, linear_layers)
        model.eval()
        with torch.no_grad():
            model(batch)
        return {name: t.cpu().numpy() for name, t in capture.get_all_activations().items()}


def main(out: Path, n_steps: int = 200, jump_step: int = 100, window: int = 5) -> dict:
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    target_steps = [0, 50, 100, 150]
    keep = {jump_step - window, jump_step + window, *target_steps}
    snapshots = train_with_snapshots(n_steps, keep)
    data, _ = load_digits(return_X_y=True)
    batch = torch.from_numpy((data[:256] / 16.0).astype(np.float32))

    before = capture_linear_outputs(snapshots[jump_step - window], batch)
    after = capture_linear_outputs(snapshots[jump_step + window], batch)
    for name in before:
        change = np.abs(after[name] - before[name]).mean()
        print(f"{name}: shape {before[name].shape}, mean |after - before| = {change:.4f}")

    # §2.2: several steps into one HDF5 file, one group per step, gzip-compressed.
    activations_by_step = {s: capture_linear_outputs(snapshots[s], batch) for s in target_steps}
    with h5py.File(out / "activations.h5", "w") as f:
        for step, acts in activations_by_step.items():
            group = f.create_group(f"step_{step}")
            for index, activation in enumerate(acts.values()):
                group.create_dataset(f"layer_{index}", data=activation, compression="gzip")
    print(f"Saved {len(activations_by_step)} snapshots to {out / 'activations.h5'}")
    return {"before": before, "after": after, "by_step": activations_by_step, "batch": batch}


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("example-output/s2"))
