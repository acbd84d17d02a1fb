"""Timing helpers of benchmarks/bench_track.py for the GPU: a paced `track` run that records
memory after every checkpoint, and `--profile`'s synchronised per-stage breakdown.

On a GPU the track loop's own clocks measure kernel launches, not the work, and its stages
overlap on worker threads; these helpers drain the device before reading a clock.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits


def peak_rss_mb() -> float:
    """The high-water mark of this process's resident set, MB."""
    # ru_maxrss is in kilobytes on Linux; it sees torch's CPU allocations (tracemalloc does not).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def is_cuda(device: str) -> bool:
    return torch.device(device).type == "cuda"


def synchronize(device: str) -> None:
    """Wait for the device's queued work, so that a host clock measures it."""
    if is_cuda(device):
        torch.cuda.synchronize(device)


def steady_per_checkpoint(stamps: list[float]) -> float | None:
    """Seconds per checkpoint between the first and the last progress call: the run's pace
    once warm, without start-up (CUDA context, cuBLAS and cuSOLVER handles, first reads)."""
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else None


def track_paced(config: dict, out: str, n: int) -> tuple[object, dict]:
    """`track` on the first `n` checkpoints, with RSS, GPU memory and a time stamp taken
    after every checkpoint."""
    from ndt.replay.track import track

    cuda = is_cuda(config["device"])
    trace: dict[str, list[float]] = {"rss_peak_mb": [], "stamps": []}
    if cuda:
        trace.update(gpu_peak_mb=[], gpu_interval_peak_mb=[], gpu_allocated_mb=[])
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    def progress(done: int, total: int, step: int) -> None:
        trace["stamps"].append(time.perf_counter())
        trace["rss_peak_mb"].append(peak_rss_mb())
        if cuda:
            # The peak since the previous checkpoint, and since the run began (their running
            # maximum): the first shows a leak as a trend, the second as growth.
            interval = torch.cuda.max_memory_allocated() / 2**20
            torch.cuda.reset_peak_memory_stats()
            running = trace["gpu_peak_mb"][-1] if trace["gpu_peak_mb"] else 0.0
            trace["gpu_interval_peak_mb"].append(interval)
            trace["gpu_peak_mb"].append(max(running, interval))
            trace["gpu_allocated_mb"].append(torch.cuda.memory_allocated() / 2**20)

    report = track(
        config["ckpt_dir"],
        out=out,
        batch_size=config["batch_size"],
        device=config["device"],
        steps=(None, (n - 1) * 100),
        overwrite=True,
        progress=progress,
    )
    return report, trace


def median_growth(values: list[float]) -> float:
    """Median of the second half of `values` minus the median of the first half (less the
    first, start-up). Which buffers of neighbouring checkpoints coexist at the peak depends
    on thread timing, so single peaks jitter by a few of them; a leak of one buffer per
    checkpoint moves the median by that buffer times half the run."""
    half = len(values) // 2
    if half < 2:
        return 0.0
    return float(np.median(values[half:]) - np.median(values[1:half]))


def gpu_info(device: str) -> dict:
    properties = torch.cuda.get_device_properties(torch.device(device))
    return {
        "name": properties.name,
        "total_memory_mb": properties.total_memory / 2**20,
        "capability": f"{properties.major}.{properties.minor}",
        "multiprocessors": properties.multi_processor_count,
        "torch_cuda": torch.version.cuda,
    }


def profile_ndt(config: dict) -> dict:
    """Where the time of one checkpoint goes, each stage timed alone and synchronised.

    On a GPU the track loop's own clocks measure kernel launches, not work, and its stages
    overlap; here each stage of `profile_checkpoints` checkpoints (after one warm-up) runs
    on its own, with the device drained before the clock is read: read (safetensors
    straight onto the device, as `track` does; on a GPU also read to pinned host memory and
    copied, the alternative), load_state_dict, the bare forward pass, the forward pass with
    every layer folded into its Gram in the hooks (fold = the difference), finalize (Gram
    correction, eigendecomposition, transfer), and the metric formulas. Then the
    eigendecomposition alone per Gram width on the host and on the device, and on a GPU
    the run again with every Gram decomposed on the device and with every one on the host.
    """
    from ndt.io.checkpoints import discover_checkpoints
    from ndt.replay.engine import prepare_run

    device = config["device"]
    setup_started = time.perf_counter()
    setup = prepare_run(config["ckpt_dir"], device=device)
    checkpoints = discover_checkpoints(config["ckpt_dir"])[: config["profile_checkpoints"] + 1]
    setup_s = time.perf_counter() - setup_started
    rows, by_layer, widths = [], {}, {}
    # numpy's BLAS (the Gram products on the CPU) gets torch's thread count, as in `track`,
    # so that the stages run under the thread pools the loop has.
    with threadpool_limits(torch.get_num_threads(), user_api="blas"):
        for index, checkpoint in enumerate(checkpoints):
            row, layer_s, widths = _profile_checkpoint(setup, checkpoint, config)
            if index:  # the first is a warm-up
                rows.append(row)
                for name, seconds in layer_s.items():
                    by_layer[name] = by_layer.get(name, 0.0) + seconds / (len(checkpoints) - 1)
    mean = {key: float(np.mean([row[key] for row in rows])) for key in rows[0]} if rows else {}
    if mean:
        mean["fold"] = max(0.0, mean["forward_and_fold"] - mean["forward"])
    profile = {
        "checkpoints": len(rows),
        "setup_s": setup_s,
        "mean_s": mean,
        "finalize_by_layer_s": by_layer,
        "gram_width_by_layer": widths,
        "eigh_by_width_s": _time_eigh_by_width(widths, device),
    }
    if is_cuda(device):
        profile["eigh_placement_per_checkpoint_s"] = _eigh_placements(config)
    return profile


def _profile_checkpoint(setup, checkpoint, config: dict) -> tuple[dict, dict, dict]:
    """One checkpoint's stages, each synchronised; see `profile_ndt`."""
    from ndt.core.estimators import DEFAULT_METRICS, compute_metrics
    from ndt.io.checkpoints import load_weights, read_state_dict
    from ndt.replay.engine import fold_probe

    device, batch = config["device"], config["batch_size"]
    row: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(key: str) -> None:
        nonlocal clock
        synchronize(device)
        now = time.perf_counter()
        row[key] = now - clock
        clock = now

    state = read_state_dict(checkpoint, device)
    lap("read")
    if is_cuda(device):
        host = read_state_dict(checkpoint, "cpu")
        pinned = {key: value.pin_memory() for key, value in host.items()}
        lap("read_to_pinned_host")
        moved = {key: value.to(device, non_blocking=True) for key, value in pinned.items()}
        lap("copy_pinned_to_device")
        del host, pinned, moved
        synchronize(device)
        clock = time.perf_counter()
    load_weights(setup.model, state, checkpoint.name)
    del state
    lap("load")
    with torch.inference_mode():
        for inputs, extras in setup.probe.chunks(batch, setup.device):
            setup.model(inputs, **extras)
    lap("forward")
    folded = fold_probe(
        setup.model, setup.probe, setup.layers, batch_size=batch, device=setup.device
    )
    lap("forward_and_fold")
    layer_s, spectra = {}, {}
    for name, accumulator in folded.settle().items():
        begun = time.perf_counter()
        spectra[name] = accumulator.finalize()
        layer_s[name] = time.perf_counter() - begun
    lap("finalize")
    for spectrum in spectra.values():
        compute_metrics(spectrum, DEFAULT_METRICS)
    lap("formulas")
    widths = {name: int(spectrum.eigenvalues.shape[0]) for name, spectrum in spectra.items()}
    return row, layer_s, widths


def _time_eigh_by_width(widths: dict[str, int], device: str, repeats: int = 3) -> dict:
    """Seconds of one float64 `eigvalsh` per Gram width: on the host (with the copy from
    the device), on the device, and batched on the device over the layers of that width."""
    timings = {}
    cuda = is_cuda(device)
    for width in sorted(set(widths.values())):
        count = sum(1 for w in widths.values() if w == width)
        data = torch.randn(2 * width, width, dtype=torch.float64, device=device)
        gram = data.T @ data
        entry: dict[str, float | int] = {"layers": count}
        for side in ("host", "device") if cuda else ("host",):
            torch.linalg.eigvalsh(gram.cpu() if side == "host" else gram)  # warm-up
            synchronize(device)
            begun = time.perf_counter()
            for _ in range(repeats):
                torch.linalg.eigvalsh(gram.cpu() if side == "host" else gram)
            synchronize(device)
            entry[side] = (time.perf_counter() - begun) / repeats
        if cuda and count > 1:
            batch = gram.expand(count, width, width).contiguous()
            torch.linalg.eigvalsh(batch)
            synchronize(device)
            begun = time.perf_counter()
            torch.linalg.eigvalsh(batch)
            synchronize(device)
            entry["device_batched_all_layers"] = time.perf_counter() - begun
        timings[str(width)] = entry
    return timings


def _eigh_placements(config: dict) -> dict:
    """Steady seconds per checkpoint of `track` with every Gram decomposed on the device,
    and with every one on the host, on the first few checkpoints."""
    from ndt.core import spectrum

    n = min(config["n"], max(4, config["profile_checkpoints"] + 2))
    default = spectrum.HOST_EIGH_MAX_WIDTH
    placements = {}
    try:
        for label, width in (("all_on_device", 0), ("all_on_host", 1 << 30)):
            spectrum.HOST_EIGH_MAX_WIDTH = width
            out = str(Path(config["out"]).with_suffix(f".{label}.h5"))
            _, trace = track_paced(config, out, n)
            placements[label] = steady_per_checkpoint(trace["stamps"])
    finally:
        spectrum.HOST_EIGH_MAX_WIDTH = default
    placements["checkpoints"] = n
    placements["default_host_max_width"] = default
    return placements
