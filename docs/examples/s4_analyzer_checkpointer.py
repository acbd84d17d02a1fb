"""Reference §4: Phase2AnalyzerBase and Phase2Checkpointer in a training loop, then
`ndt track` on the folder the checkpointer wrote.

Every `capture_interval` steps the checkpointer saves a safetensors checkpoint (and, once,
the ndt.toml manifest naming the zoo model and the probe) and the analyzer's activation
snapshot. The folder is then replayed with ndt's engine, exactly as
``ndt track OUTPUT_DIR/ckpts`` would, with no other option. Default OUTPUT_DIR:
example-output/s4.

    python docs/examples/s4_analyzer_checkpointer.py [OUTPUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from ndt import Phase2Checkpointer, read_results
from ndt.analysis import Phase2AnalyzerBase
from ndt.io.manifest import ModelSpec
from ndt.io.probe_sources import digits_probe
from ndt.models.spec import build_model
from ndt.replay.track import track

SPEC = ModelSpec("mlp", {"in_features": 64, "hidden": [32, 32], "n_classes": 10})


def main(out: Path, n_steps: int = 200, capture_interval: int = 50) -> dict:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    data, target = load_digits(return_X_y=True)
    x_all = torch.from_numpy((data / 16.0).astype(np.float32))
    y_all = torch.from_numpy(target.astype(np.int64))
    model = build_model(SPEC)
    probe = digits_probe(256, seed=0)

    analyzer = Phase2AnalyzerBase(model, device="cpu")
    analyzer.register_activation_hooks()
    checkpointer = Phase2Checkpointer(
        out / "ckpts", capture_interval=capture_interval, model_spec=SPEC, probe=probe.inputs
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    for step in range(n_steps + 1):
        if checkpointer.should_capture(step):
            checkpointer.save_checkpoint(model, step)
            activations = analyzer.capture_activations(probe.inputs)
            checkpointer.save_activations(activations, step)
            dims = analyzer.analyze_dimensionality(activations)
            ranks = ", ".join(f"{name} {d.stable_rank:.2f}" for name, d in dims.items())
            print(f"Captured at step {step}: stable rank {ranks}")
        model.train()
        chosen = torch.randint(len(y_all), (64,), generator=generator)
        loss = nn.functional.cross_entropy(model(x_all[chosen]), y_all[chosen])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    analyzer.cleanup()

    # The folder is self-describing: replay it as `ndt track out/ckpts` would.
    report = track(out / "ckpts", out=out / "results.h5", device="cpu")
    results = read_results(report.path)
    print(f"ndt track: steps {results.steps.tolist()}, layers {results.layers}")
    for column, layer in enumerate(results.layers):
        curve = results.metrics["stable_rank"][:, column].round(2).tolist()
        print(f"  {layer} stable_rank {curve}")
    return {"results": results, "checkpointer": checkpointer, "probe": probe, "model": model}


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("example-output/s4"))
