"""Measure HighFrequencyTracker's overhead on the digits-MLP fixture's training loop.

The loop is the one fixtures/make_fixtures.py trains `fixtures/digits-mlp` with: zoo `mlp`
(64-32-32-32-10), Adam(lr=1e-3), minibatches of 64 digits drawn with replacement, one
thread. Three copies train side by side, from the same seed: without a tracker, with a
tracker on the fixture's probe (512 digits), and with a tracker on the training batch (no
probe). After one warm-up block each, training runs in rounds: in each round every variant
trains one block of `--block` steps (process CPU time), in an order that rotates from round
to round. The overhead is the median over the rounds of each round's ratio to the untracked
block, so that a change in the machine's load between rounds cancels; the fastest block of
each variant is printed too:

    python docs/examples/tracker_overhead.py --blocks 20 --block 100 --sampling-frequency 10
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from ndt import HighFrequencyTracker
from ndt.io.manifest import ModelSpec
from ndt.io.probe_sources import digits_probe
from ndt.models.spec import build_model

SPEC = ModelSpec("mlp", {"in_features": 64, "hidden": [32, 32, 32], "n_classes": 10})
VARIANTS = ("none", "probe", "batch")


class Run:
    """One training run of the fixture's loop, optionally with a tracker."""

    def __init__(self, variant: str, sampling_frequency: int) -> None:
        torch.manual_seed(0)
        data, target = load_digits(return_X_y=True)
        self.inputs = torch.from_numpy((data / 16.0).astype(np.float32))
        self.labels = torch.from_numpy(target.astype(np.int64))
        self.model = build_model(SPEC)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.generator = torch.Generator().manual_seed(0)
        self.step = 0
        probe = digits_probe(512) if variant == "probe" else None
        self.tracker = (
            None
            if variant == "none"
            else HighFrequencyTracker(
                self.model, sampling_frequency=sampling_frequency, probe=probe
            )
        )

    def train(self, n_steps: int) -> float:
        """Process CPU seconds for the next `n_steps` updates (and tracker logs)."""
        started = time.process_time()
        for _ in range(n_steps):
            chosen = torch.randint(len(self.labels), (64,), generator=self.generator)
            logits = self.model(self.inputs[chosen])
            loss = nn.functional.cross_entropy(logits, self.labels[chosen])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            if self.tracker is not None:
                self.tracker.log(self.step, loss.item())
            self.step += 1
        if self.tracker is not None:
            self.tracker.flush()  # the steps still waiting to be measured count in this block
        return time.process_time() - started


def measure(blocks: int, block: int, sampling_frequency: int) -> dict[str, list[float]]:
    """Each variant's block times, in seconds, one per round."""
    runs = {variant: Run(variant, sampling_frequency) for variant in VARIANTS}
    for run in runs.values():
        run.train(block)  # warm-up
    times: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for index in range(blocks):
        order = VARIANTS[index % 3 :] + VARIANTS[: index % 3]
        for variant in order:
            times[variant].append(runs[variant].train(block))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=20, help="timed rounds")
    parser.add_argument("--block", type=int, default=100, help="training steps per block")
    parser.add_argument("--sampling-frequency", type=int, default=10, help="log every N steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    times = measure(args.blocks, args.block, args.sampling_frequency)
    base = np.array(times["none"])
    print(
        f"sampling_frequency={args.sampling_frequency}: {args.blocks} rounds of "
        f"{args.block} steps per variant (process CPU time)"
    )
    for variant in VARIANTS:
        block_times = np.array(times[variant])
        median_step = 1e3 * np.median(block_times) / args.block
        fastest_step = 1e3 * block_times.min() / args.block
        line = f"  tracker={variant:<5} {median_step:.3f} ms/step (fastest {fastest_step:.3f})"
        if variant != "none":
            paired = 100 * np.median(block_times / base - 1)
            fastest = 100 * (block_times.min() / base.min() - 1)
            line += (
                f"  overhead {paired:+.1f} % (median of rounds; fastest blocks {fastest:+.1f} %)"
            )
        print(line)


if __name__ == "__main__":
    main()
