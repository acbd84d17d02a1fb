"""ndt's own work per checkpoint against the forward pass, on GPT-2-small's shape.

Issue 12's aim: on a model of GPT-2-small size, ndt's own work per checkpoint (loading aside)
is at most 20 % of the forward pass. The model is transformers' ``GPT2LMHeadModel`` built
from GPT-2-small's config (12 layers, n_embd 768, 12 heads, vocabulary 50,257; ``--vocab``
for a smaller one), seeded random weights, float32, as ``ndt track`` builds an HF run's
model; the probe is random token ids (16 sequences x 64 tokens by default). Nothing is
downloaded, and nothing is written to disk but ``--track``'s temporary checkpoints.

Each configuration (``default``: the handler's default layers, the 12 blocks, every token a
row; ``with-head``: ``--layers @blocks --layers lm_head``, the vocabulary head that the
default leaves out added; ``default-last``: the default layers with ``--tokens last``) is
measured `--repeat` times, interleaved with a bare forward pass, all on one thread
(``--threads``):

- ``forward``: the probe through the model with no hooks, as `ndt track` runs it;
- ``own``: ndt's work, timed where it happens, serially (no worker threads): the forward
  hooks (the rows rule, a copy, the float64 Gram update), then each layer's finalisation
  (centring correction, eigendecomposition) and the metric formulas.

The figure is the median over repeats of own / forward, each pair measured back to back.
`ndt track` runs the same work on worker threads beside the next forward pass; this
figure does not count that overlap: it is the work added, not the wall time.

``--track K`` also saves K checkpoints (``save_pretrained``, in a temporary folder) and runs
`ndt.replay.track.track` on them per configuration with ``threads=--threads``: the forward
pass on that many threads, the folding and eigendecompositions on ndt's worker threads. It
prints the wall time per checkpoint beside the bare forward pass and the loading, i.e.
what the overlap leaves on the critical path: (wall - load - write) / K - forward.

The machine's load average is printed with the figures (a shared machine makes every time
noisy).

    python benchmarks/bench_hf_overhead.py [--repeat 5] [--vocab 50257] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

CONFIGS = {
    "default": ([], "all"),  # the handler's default layers (the 12 blocks), every token a row
    "with-head": (["@blocks", "lm_head"], "all"),  # and the vocabulary head, every token
    "default-last": ([], "last"),  # the default layers, --tokens last
}


def build(vocab: int, n_positions: int, seed: int) -> torch.nn.Module:
    import transformers

    transformers.logging.set_verbosity_error()
    config = transformers.GPT2Config(
        n_layer=12, n_embd=768, n_head=12, vocab_size=vocab, n_positions=n_positions,
        bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    torch.manual_seed(seed)
    return transformers.GPT2LMHeadModel(config).eval()


def bare_forward(model: torch.nn.Module, probe: object) -> float:
    from ndt.replay.engine import _run_probe

    started = time.perf_counter()
    _run_probe(model, probe, None, torch.device("cpu"))
    return time.perf_counter() - started


def own_work(model: torch.nn.Module, probe: object, layers: list[str], tokens: str) -> dict:
    """One serial pass of ndt's work; seconds per part."""
    from ndt.core.estimators import DEFAULT_METRICS, compute_metrics
    from ndt.replay.engine import fold_probe

    spent: dict[str, float] = {}
    started = time.perf_counter()
    folded = fold_probe(model, probe, layers, timings=spent, tokens=tokens)
    total = time.perf_counter() - started
    started = time.perf_counter()
    spectra = folded.spectra()
    finalize = time.perf_counter() - started
    started = time.perf_counter()
    for spectrum in spectra.values():
        compute_metrics(spectrum, DEFAULT_METRICS)
    metrics = time.perf_counter() - started
    return {
        "hooks": spent["gram"],
        "forward_with_hooks": total - spent["gram"],
        "finalize": finalize,
        "metrics": metrics,
        "own": spent["gram"] + finalize + metrics,
    }


def run_track(model: torch.nn.Module, probe: object, args: argparse.Namespace, results: dict):
    """`track` over `args.track` saved checkpoints per configuration; seconds per checkpoint."""
    import tempfile
    from pathlib import Path

    from ndt.io.probe import save_probe
    from ndt.replay.track import track

    figures = {}
    with tempfile.TemporaryDirectory(prefix="ndt-bench-hf-") as tmp:
        run = Path(tmp) / "run"
        for index in range(args.track):
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter.mul_(1.0 + 1e-3 * index)
            model.save_pretrained(run / f"checkpoint-{100 * (index + 1)}")
        probe_path = Path(tmp) / "probe.safetensors"
        save_probe(probe_path, probe.inputs)
        for name in args.configs.split(","):
            patterns, tokens = CONFIGS[name]
            report = track(
                run, out=Path(tmp) / f"{name}.h5", probe=probe_path, layers=patterns or None,
                tokens=tokens, device="cpu", threads=args.threads,
            )  # fmt: skip
            per = {key: value / args.track for key, value in report.timings.items()}
            forward = statistics.median(run["forward"] for run in results[name]["runs"])
            critical = per["wall"] - per["load"] - per["write"] - forward
            figures[name] = {"per_checkpoint": per, "bare_forward": forward, "critical": critical}
            print(
                f"track {name:<13} {args.track} checkpoints: wall {per['wall']:.3f} s/ckpt "
                f"(load {per['load']:.3f}, forward in track {per['forward']:.3f}, write "
                f"{per['write']:.3f}); bare forward {forward:.3f} s; left on the critical "
                f"path {critical:.3f} s = {100 * critical / forward:.1f} % of the forward",
                flush=True,
            )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated names")
    parser.add_argument("--track", type=int, default=0, metavar="K")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from ndt.architectures import select_layers
    from ndt.io.probe import Probe

    torch.set_num_threads(args.threads)
    model = build(args.vocab, args.seq, seed=0)
    generator = torch.Generator().manual_seed(0)
    probe = Probe(torch.randint(0, args.vocab, (args.batch, args.seq), generator=generator))
    results = {}
    with threadpool_limits(args.threads, user_api="blas"):
        bare_forward(model, probe)  # warm-up: first-call allocations and kernel choices
        for name in args.configs.split(","):
            patterns, tokens = CONFIGS[name]
            layers = select_layers(model, patterns or None)
            own_work(model, probe, layers, tokens)  # warm-up
            runs = []
            for _ in range(args.repeat):
                forward = bare_forward(model, probe)
                runs.append({"forward": forward, **own_work(model, probe, layers, tokens)})
            ratio = statistics.median(run["own"] / run["forward"] for run in runs)
            results[name] = {"layers": layers, "tokens": tokens, "runs": runs, "ratio": ratio}
            med = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            print(
                f"{name:<13} {len(layers):>2} layers  forward {med['forward']:.3f} s  "
                f"own {med['own']:.3f} s (hooks {med['hooks']:.3f}, finalize "
                f"{med['finalize']:.3f}, metrics {med['metrics']:.4f})  "
                f"own/forward {100 * ratio:.1f} %  (aim <= 20 %)",
                flush=True,
            )
        if args.track:
            results["track"] = run_track(model, probe, args, results)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; nproc {os.cpu_count()}; "
          f"torch {torch.__version__}, threads {args.threads}; vocab {args.vocab}, "
          f"probe {args.batch}x{args.seq} tokens")  # fmt: skip
    if args.json:
        machine = {"load": load, "nproc": os.cpu_count(), "python": platform.python_version(),
                   "torch": torch.__version__, "numpy": np.__version__}  # fmt: skip
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "machine": machine, "results": results}, handle,
                      indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
