"""Reference §3: the geometry of activations across training phases — PCA per phase,
clusters by phase, and per-neuron statistics before/after.

Captures the zoo MLP's hidden layers on a fixed digits batch at three training steps and
runs ndt.analysis's versions of the reference functions. Saves
one explained-variance bar chart per layer into OUTPUT_DIR (default: example-output/s3).

    python docs/examples/s3_geometry.py [OUTPUT_DIR]
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from ndt.analysis import (
    analyze_activation_phases,
    cluster_activations_by_phase,
    compute_neuron_statistics,
)
from ndt.core.hooks import ActivationCapture, resolve_modules
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


def capture(model: nn.Module, batch: torch.Tensor, names: list[str]) -> dict[str, np.ndarray]:
    """Outputs of the modules called `names` on `batch`, keyed by those names."""
    with ActivationCapture() as hooks:
        hooks.register_hooks(model, list(resolve_modules(model, names).values()), names)
        model.eval()
        with torch.no_grad():
            model(batch)
        return {name: t.numpy() for name, t in hooks.get_all_activations().items()}


def main(out: Path, steps: tuple[int, ...] = (0, 100, 199)) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    snapshots = train_with_snapshots(max(steps) + 1, set(steps))
    data, _ = load_digits(return_X_y=True)
    batch = torch.from_numpy((data[:300] / 16.0).astype(np.float32))
    layers = ["relu1", "relu2"]
    by_step = {step: capture(snapshots[step], batch, layers) for step in steps}

    pca = analyze_activation_phases(by_step, n_components=10)
    for layer, result in pca.items():
        ratios = result.explained_variance
        print(f"{layer}: PC1-3 explain {ratios[:3].round(3).tolist()}, total {ratios.sum():.1%}")
        figure, axis = plt.subplots()
        axis.bar(range(len(ratios)), ratios)
        axis.set(title=f"{layer} - explained variance", xlabel="component", ylabel="share")
        figure.savefig(out / f"pca_{layer}.png", dpi=80)
        plt.close(figure)

    clusters = cluster_activations_by_phase(by_step, n_clusters=4)
    for layer, result in clusters.items():
        counts = {step: c.tolist() for step, c in result.distribution.items()}
        print(f"{layer} cluster sizes per step: {counts}")

    stats = compute_neuron_statistics(by_step[steps[0]], by_step[steps[-1]])
    for layer, stat in stats.items():
        print(
            f"{layer}: {int(stat.became_dead.sum())} neurons became dead, "
            f"mean |change| {stat.mean_change.mean():.4f}"
        )
    return {"by_step": by_step, "pca": pca, "clusters": clusters, "stats": stats}


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("example-output/s3"))
