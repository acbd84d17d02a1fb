"""Reference §5: the full in-training pipeline (§5.1) on two seeds, then the batch summary
of both runs (§5.2) after `ndt jumps` has tested their curves.

Each run trains the zoo MLP on the digits with a HighFrequencyTracker (on a fixed probe),
a Phase2AnalyzerBase and a Phase2Checkpointer, and exports its curves with export_to_hdf5.
The jumps are then found and tested as ``ndt jumps RESULTS`` does, and summarised as
``ndt summary OUTPUT_DIR`` does. Default OUTPUT_DIR: example-output/s5.

    python docs/examples/s5_pipeline.py [OUTPUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from ndt import HighFrequencyTracker, Phase2Checkpointer, export_to_hdf5, read_results
from ndt.analysis import Phase2AnalyzerBase
from ndt.io.probe_sources import digits_probe
from ndt.io.store import write_jumps
from ndt.jumps import detect_jumps_in_results
from ndt.jumps.summary import summarize_runs
from ndt.models.zoo import mlp


def digits_loader(seed: int) -> torch.utils.data.DataLoader:
    data, target = load_digits(return_X_y=True)
    dataset = torch.utils.data.TensorDataset(
        torch.from_numpy((data / 16.0).astype(np.float32)), torch.from_numpy(target)
    )
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True, generator=generator)


def phase2_mechanistic_experiment(model, dataloader, num_steps, checkpoint_dir, probe):
    """§5.1 with ndt's classes: track, capture at critical moments, analyse afterwards."""
    tracker = HighFrequencyTracker(model, sampling_frequency=5, probe=probe)
    analyzer = Phase2AnalyzerBase(model, device="cpu")
    analyzer.register_activation_hooks()
    checkpointer = Phase2Checkpointer(checkpoint_dir, capture_interval=100)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    criterion = nn.CrossEntropyLoss()
    critical_steps = set()
    dataloader_iter = iter(dataloader)
    for step in range(num_steps):
        try:
            x, y = next(dataloader_iter)
        except StopIteration:
            dataloader_iter = iter(dataloader)
            x, y = next(dataloader_iter)
        model.train()
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        tracker.log(step, loss.item())
        if checkpointer.should_capture(step):
            checkpointer.save_activations(analyzer.capture_activations(x), step)
            critical_steps.add(step)
    analyzer.cleanup()
    results = tracker.get_results()
    jumps = tracker.detect_jumps(metric="stable_rank")
    jump_steps = {jump.step for layer_jumps in jumps.values() for jump in layer_jumps}
    print(f"  training steps {num_steps}, z-score flags at {sorted(jump_steps)}")
    print(f"  captured activations at {sorted(critical_steps)}")
    return {"tracker": tracker, "results": results, "jumps": jumps, "critical": critical_steps}


def main(out: Path, num_steps: int = 300, seeds: tuple[int, ...] = (0, 1)) -> dict:
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    probe = digits_probe(256, seed=0)
    runs = {}
    for seed in seeds:
        print(f"run seed={seed}")
        torch.manual_seed(seed)
        run = phase2_mechanistic_experiment(
            mlp(hidden=(32, 32)), digits_loader(seed), num_steps, out / f"seed{seed}", probe
        )
        path = export_to_hdf5(run["results"], out / f"seed{seed}.h5", metadata={"seed": seed})
        # What `ndt jumps seedN.h5` does: detect, test against surrogates, write /jumps.
        report = detect_jumps_in_results(read_results(path), metrics=["stable_rank"])
        write_jumps(path, report.table, report.settings())
        runs[seed] = run

    # §5.2: one row per run, as `ndt summary OUT` prints it.
    summaries = summarize_runs([out])
    print("Phase 2 batch summary")
    for summary in summaries:
        print(f"{summary.name}: {summary.n_jumps} significant jumps at steps {summary.jump_steps}")
    return {"runs": runs, "summaries": summaries}


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("example-output/s5"))
