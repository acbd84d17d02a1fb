"""Reference §1: track dimensionality inside a training loop, find jumps, export.

Trains the zoo MLP on scikit-learn's 8x8 digits for a few hundred steps with a
HighFrequencyTracker on a fixed probe batch (§1.1, §1.3), reads the exported results file
back and applies the reference's derivative rule to it (§1.2). Writes results.h5 and
results.csv into OUTPUT_DIR (default: example-output/s1).

    python docs/examples/s1_tracking.py [OUTPUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from ndt import HighFrequencyTracker, export_to_csv, export_to_hdf5, load_results
from ndt.architectures import detect_architecture, get_handler
from ndt.io.probe_sources import digits_probe
from ndt.models.zoo import mlp


def digits_batches(n_steps: int, batch_size: int = 64, seed: int = 0):
    """Seeded minibatches of digits scaled to [0, 1]: (x (64, 64) float32, y (64,) int64)."""
    data, target = load_digits(return_X_y=True)
    x = torch.from_numpy((data / 16.0).astype(np.float32))
    y = torch.from_numpy(target.astype(np.int64))
    generator = torch.Generator().manual_seed(seed)
    for _ in range(n_steps):
        chosen = torch.randint(len(y), (batch_size,), generator=generator)
        yield x[chosen], y[chosen]


def main(out: Path, n_steps: int = 300) -> dict:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    model = mlp(in_features=64, hidden=(32, 32, 32), n_classes=10)

    # §1.3: which layers ndt watches on this model.
    handler = get_handler(model)
    print(f"Detected architecture: {detect_architecture(model)}")
    print(f"Monitoring {len(handler.get_layer_names(model))} layers:")
    for name in handler.get_layer_names(model):
        print(f"  - {name}")

    # §1.1: the training loop, with the tracker on a fixed probe of 256 digits.
    tracker = HighFrequencyTracker(
        model,
        layers=handler.get_activation_layers(model),
        layer_names=handler.get_layer_names(model),
        sampling_frequency=5,
        jump_z_threshold=2.5,
        probe=digits_probe(256, seed=0),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    for step, (x, y) in enumerate(digits_batches(n_steps)):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        tracker.log(step, loss.item())
    tracker.close()

    results = tracker.get_results()
    all_jumps = tracker.detect_jumps(metric="stable_rank")
    for layer_name, jumps in all_jumps.items():
        first, last = results[layer_name]["stable_rank"].iloc[[0, -1]]
        print(f"{layer_name}: stable rank {first:.2f} -> {last:.2f}, {len(jumps)} jumps")
        for jump in jumps:
            print(
                f"  Step {jump.step}: {jump.value_before:.2f} -> {jump.value_after:.2f} "
                f"(z={jump.z_score:.2f})"
            )
    export_to_hdf5(results, out / "results.h5", metadata={"model": "MLP", "dataset": "digits"})
    export_to_csv(results, out / "results.csv")

    # §1.2: the reference's derivative rule on the curves read back from the file.
    table = load_results(out / "results.h5")
    for layer, curve in table.groupby("layer", sort=False):
        gradients = np.gradient(curve["stable_rank"].to_numpy())
        threshold = np.std(gradients) * 2.5
        flagged = curve["step"].to_numpy()[np.abs(gradients) > threshold]
        print(f"{layer}: derivative rule flags steps {flagged.tolist()}")
    return {"results": results, "jumps": all_jumps, "out": out}


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("example-output/s1"))
