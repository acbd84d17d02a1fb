"""Benchmark `ndt track` against a naive replay loop on three workloads (issue 7).

For each workload (MLP, CNN, GPT-style transformer; see benchmarks/workloads.py) it builds a
run folder of safetensors checkpoints in a temporary folder, then runs, each in its own
Python subprocess so that the peak RSS of each side is its own:

- ndt: ``ndt.replay.track.track`` on every checkpoint, with its load / forward / metrics /
  write split, with peak RSS recorded after every checkpoint to show that it does not grow
  with the number of checkpoints (peak at the middle checkpoint vs the last); and a serial
  re-read of the checkpoints, to compare with the load time the prefetch thread leaves.
- baseline: what the reference library does, written here: ``torch.load`` of a ``.pt`` copy
  per checkpoint, forward hooks that keep every full activation, and one
  ``torch.linalg.svd`` per metric per layer (float32, as the activations are).
  It also computes, untimed, a float64 SVD reference of the first checkpoint.

It prints a table, checks the targets of issue 7, checks that ndt and the baseline (and the
float64 reference) agree to 1e-4, and writes everything to a JSON file.

Usage:
    python benchmarks/bench_track.py                       # full benchmark (tens of minutes)
    python benchmarks/bench_track.py --quick               # 3 checkpoints, probe / 4
    python benchmarks/bench_track.py --workloads mlp --checkpoints 10 --baseline-checkpoints 2

See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stages import (  # noqa: E402
    gpu_info,
    median_growth,
    peak_rss_mb,
    profile_ndt,
    steady_per_checkpoint,
    synchronize,
    track_paced,
)
from workloads import WORKLOADS, build_workload  # noqa: E402

SPECTRAL = (
    "stable_rank",
    "participation_ratio",
    "cumulative_energy_90",
    "nuclear_norm_ratio",
    "effective_rank",
)
RTOL = 1e-4
RATIO_TARGET = {"mlp": 3.0, "cnn": 3.0, "transformer": 5.0}
# Issue 17: ndt on a GPU against ndt on all the CPU cores of the same machine.
GPU_RATIO_TARGET = {"transformer": 10.0}
# Growth of the median per-checkpoint GPU peak from the first half of the run to the second
# (stages.median_growth): less than one 512-wide float64 Gram.
GPU_GROWTH_MB = 2.0


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ----------------------------------------------------------------------------- workers


def worker_ndt(config: dict) -> dict:
    """Run `ndt.replay.track.track` on the first `n` checkpoints; return timings and memory, and
    with config["profile"] a synchronised breakdown of a few checkpoints (`profile_ndt`)."""
    from ndt.io.checkpoints import discover_checkpoints, read_state_dict
    from ndt.replay.allocator import return_large_blocks_to_os

    return_large_blocks_to_os()  # as `ndt track` does
    rss_start = _rss_now_mb()
    last_step = (config["n"] - 1) * 100
    started = time.perf_counter()
    report, trace = track_paced(config, config["out"], config["n"])
    wall = time.perf_counter() - started
    peak = peak_rss_mb()
    peaks = trace["rss_peak_mb"]
    read = 0.0
    if config.get("measure_read"):
        for checkpoint in discover_checkpoints(config["ckpt_dir"], steps=(None, last_step)):
            begun = time.perf_counter()
            state = read_state_dict(checkpoint, config["device"])
            synchronize(config["device"])
            read += time.perf_counter() - begun
            del state
    result = {
        "n": len(report.computed),
        "wall_s": wall,
        "steady_per_checkpoint_s": steady_per_checkpoint(trace["stamps"]),
        "timings_s": dict(report.timings),
        "serial_read_s": read,
        "rss_start_mb": rss_start,
        "rss_peak_mb": peak,
        "rss_peak_at_half_mb": peaks[len(peaks) // 2 - 1] if len(peaks) > 1 else peak,
        "failures": report.failures,
    }
    if "gpu_peak_mb" in trace:
        result["gpu_peak_mb_per_checkpoint"] = trace["gpu_peak_mb"]
        result["gpu_interval_peak_mb_per_checkpoint"] = trace["gpu_interval_peak_mb"]
        result["gpu_allocated_mb_per_checkpoint"] = trace["gpu_allocated_mb"]
        result["gpu"] = gpu_info(config["device"])
    if config.get("profile"):
        result["profile"] = profile_ndt(config)
    return result


def _svd_metrics(matrix: torch.Tensor, activity: np.ndarray) -> dict[str, float]:
    """The reference library's pattern: a separate full SVD for every metric."""
    from ndt.core.estimators import METRICS, _dormant_fraction
    from ndt.core.spectrum import Spectrum

    values = {}
    for name in SPECTRAL:
        singular = torch.linalg.svd(matrix, full_matrices=False)[1]
        eigenvalues = singular.to(torch.float64).square().numpy()
        spectrum = Spectrum(eigenvalues, activity, matrix.shape[0], matrix.shape[1])
        values[name] = METRICS[name](spectrum)
    values["dormant_fraction"] = _dormant_fraction(
        Spectrum(np.ones(1), activity, matrix.shape[0], matrix.shape[1])
    )
    return values


def _reference_metrics(matrix: torch.Tensor, activity: np.ndarray) -> dict[str, float]:
    """Float64 SVD of the centred activation: the yardstick for both."""
    from ndt.core.estimators import compute_metrics
    from ndt.core.spectrum import Spectrum

    data = matrix.to(torch.float64)
    data = data - data.mean(0)
    eigenvalues = torch.linalg.svdvals(data).square().numpy()
    spectrum = Spectrum(eigenvalues, activity, matrix.shape[0], matrix.shape[1])
    return compute_metrics(spectrum, (*SPECTRAL, "dormant_fraction"))


def worker_baseline(config: dict) -> dict:
    """The naive loop on the first `n` .pt checkpoints; return timings, memory and values."""
    from torch import nn

    from ndt.architectures import select_layers
    from ndt.core.spectrum import as_matrix
    from ndt.io.manifest import ModelSpec
    from ndt.io.probe import load_probe
    from ndt.models.spec import build_model

    rss_start = _rss_now_mb()
    started = time.perf_counter()
    spec = ModelSpec(config["target"], config["kwargs"])
    model = build_model(spec).eval()
    layers = select_layers(model)
    modules = dict(model.named_modules())
    probe = load_probe(config["probe"])
    kept: dict[str, torch.Tensor] = {}
    handles = [
        modules[name].register_forward_hook(
            lambda module, args, output, name=name: kept.__setitem__(name, output.detach())
        )
        for name in layers
    ]
    timings = dict.fromkeys(("load", "forward", "metrics", "write"), 0.0)
    values: dict[str, dict] = {}
    reference: dict[str, dict] = {}
    paths = sorted(Path(config["pt_dir"]).glob("*.pt"))[: config["n"]]
    out = Path(config["out"])
    for path in paths:
        step = str(int(path.stem.split("_")[-1]))
        begun = time.perf_counter()
        model.load_state_dict(torch.load(path, weights_only=True))
        loaded = time.perf_counter()
        with torch.no_grad():
            model(probe.inputs)
        forwarded = time.perf_counter()
        values[step] = {}
        for name in layers:
            token_axis = not isinstance(modules[name], nn.Conv1d)
            matrix = as_matrix(kept[name], token_axis=token_axis).to(torch.float32)
            activity = matrix.abs().mean(0).to(torch.float64).numpy()
            centred = matrix - matrix.mean(0)
            values[step][name] = _svd_metrics(centred, activity)
        measured = time.perf_counter()
        out.write_text(json.dumps(values))
        written = time.perf_counter()
        timings["load"] += loaded - begun
        timings["forward"] += forwarded - loaded
        timings["metrics"] += measured - forwarded
        timings["write"] += written - measured
        if not reference:  # untimed: the float64 yardstick on the first checkpoint
            paused = time.perf_counter()
            for name in layers:
                token_axis = not isinstance(modules[name], nn.Conv1d)
                matrix = as_matrix(kept[name], token_axis=token_axis).to(torch.float32)
                activity = matrix.abs().mean(0).to(torch.float64).numpy()
                reference[name] = _reference_metrics(matrix, activity)
            reference_s = time.perf_counter() - paused
            started += reference_s
        kept.clear()
    wall = time.perf_counter() - started
    for handle in handles:
        handle.remove()
    return {
        "n": len(paths),
        "wall_s": wall,
        "timings_s": timings,
        "rss_start_mb": rss_start,
        "rss_peak_mb": peak_rss_mb(),
        "values": values,
        "reference_step": str(int(paths[0].stem.split("_")[-1])),
        "reference": reference,
    }


def _worker_main(kind: str, config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    torch.set_num_threads(config["threads"])
    result = worker_ndt(config) if kind == "ndt" else worker_baseline(config)
    Path(config["result"]).write_text(json.dumps(result))


def _spawn(kind: str, config: dict, folder: Path) -> dict:
    label = f"{kind}-{config['device'].replace(':', '_')}-{config['n']}"
    config_path = folder / f"{label}.config.json"
    config["result"] = str(folder / f"{label}.result.json")
    config_path.write_text(json.dumps(config))
    # Both sides get the huge-page setting that the `ndt` command sets for itself, so that
    # the ratio compares the replay loops, not the page size.
    env = {**os.environ, "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE", "1")}
    subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", kind, str(config_path)],
        check=True,
        env=env,
    )
    return json.loads(Path(config["result"]).read_text())


# ----------------------------------------------------------------------------- comparison


def _relative_differences(ndt_values: dict, other: dict, steps: list[str]) -> dict[str, float]:
    """Max over steps and layers of |ndt - other| / max(|other|, 1e-12), per metric."""
    worst: dict[str, float] = {}
    for step in steps:
        for layer, metrics in other[step].items():
            for metric, expected in metrics.items():
                got = ndt_values[step][layer][metric]
                if np.isnan(expected) and np.isnan(got):
                    diff = 0.0
                else:
                    diff = abs(got - expected) / max(abs(expected), 1e-12)
                    if expected == 0:
                        diff = abs(got)
                worst[metric] = max(worst.get(metric, 0.0), diff)
    return worst


def _ndt_values(results_path: str) -> dict:
    from ndt.io.store import read_results

    results = read_results(results_path)
    values: dict[str, dict] = {}
    for index, step in enumerate(results.steps):
        values[str(int(step))] = {
            layer: {m: float(results.metrics[m][index, j]) for m in results.metrics}
            for j, layer in enumerate(results.layers)
        }
    return values


# ----------------------------------------------------------------------------- driver


def _devices(text: str) -> list[str]:
    return [d.strip() for d in text.split(",") if d.strip()]


def run_workload(name: str, args: argparse.Namespace, root: Path) -> dict:
    workload = WORKLOADS[name]
    n_ckpt = args.checkpoints or (3 if args.quick else workload.n_checkpoints)
    n_base = min(n_ckpt, args.baseline_checkpoints or (2 if args.quick else n_ckpt))
    samples = max(1, int(workload.probe_shape[0] * (0.25 if args.quick else args.probe_scale)))
    print(f"[{name}] building {n_ckpt} checkpoints, probe {samples} ...", file=sys.stderr)
    built = build_workload(workload, root, n_checkpoints=n_ckpt, n_samples=samples)
    folder = root / name
    common = {"threads": args.threads, "batch_size": args.batch_size}
    base_config = {
        **common,
        "device": "cpu",  # the naive loop always runs on the CPU
        "target": workload.spec.target,
        "kwargs": dict(workload.spec.kwargs),
        "probe": str(built.probe_path),
        "pt_dir": str(built.pt_dir),
        "out": str(folder / "baseline.json"),
        "n": n_base,
    }
    # Baseline and ndt back to back on the same machine state; ndt's short runs last.
    print(f"[{name}] baseline on {n_base} checkpoints ...", file=sys.stderr)
    base = _spawn("baseline", base_config, folder)
    devices = {}
    for device in _devices(args.device):
        print(f"[{name}] ndt on {n_ckpt} checkpoints, device {device} ...", file=sys.stderr)
        ndt_config = {
            **common,
            "device": device,
            "ckpt_dir": str(built.ckpt_dir),
            "out": str(folder / f"results-{device.replace(':', '_')}.h5"),
            "n": n_ckpt,
            "measure_read": True,
            "profile": args.profile,
            "profile_checkpoints": args.profile_checkpoints,
        }
        ours = _spawn("ndt", ndt_config, folder)
        devices[device] = _device_result(name, ours, base, ndt_config["out"])
    first = next(iter(devices.values()))
    return {
        "workload": name,
        "description": workload.description,
        "n_checkpoints": n_ckpt,
        "n_baseline_checkpoints": n_base,
        "probe_samples": samples,
        "baseline": {k: v for k, v in base.items() if k not in ("values", "reference")},
        # The first device's figures at the top level, as before devices could be several.
        **{k: v for k, v in first.items() if k != "values_path"},
        "devices": devices,
        "versus_cpu": _versus_cpu(name, devices),
    }


def _device_result(name: str, ours: dict, base: dict, results_path: str) -> dict:
    """One device's figures against the baseline, and the issue-7 checks."""
    ndt_values = _ndt_values(results_path)
    agreement = _relative_differences(ndt_values, base["values"], sorted(base["values"]))
    vs_reference = _relative_differences(
        ndt_values, {base["reference_step"]: base["reference"]}, [base["reference_step"]]
    )
    base_timings = {k: v / base["n"] for k, v in base["timings_s"].items()}
    per_ckpt_ndt = ours["wall_s"] / ours["n"]
    per_ckpt_base = base["wall_s"] / base["n"]
    timings = {k: v / ours["n"] for k, v in ours["timings_s"].items()}
    # Peak RSS after the last checkpoint minus after the middle one: the allocator settles
    # within the first few checkpoints, so growth in the second half would be a leak.
    rss_growth = ours["rss_peak_mb"] - ours["rss_peak_at_half_mb"]
    # Eigendecompositions overlap the next forward pass on a worker thread, so the cost
    # that counts is what the main thread spends outside load, forward and write. (On a GPU
    # these clocks see kernel launches only: see the profile's synchronised figures.)
    timings["metrics_critical"] = max(
        0.0, timings["wall"] - timings["load"] - timings["forward"] - timings["write"]
    )
    result = {
        "ndt": ours,
        "per_checkpoint_s": {"ndt": per_ckpt_ndt, "baseline": per_ckpt_base},
        "ndt_split_s": timings,
        "baseline_split_s": base_timings,
        "serial_read_per_checkpoint_s": ours["serial_read_s"] / ours["n"],
        "speedup": per_ckpt_base / per_ckpt_ndt,
        "speedup_target": RATIO_TARGET[name],
        # No tool that runs the same forward pass can beat this ratio on this machine.
        "speedup_ceiling": per_ckpt_base / base_timings["forward"],
        "rss_growth_mb_second_half": rss_growth,
        "max_rel_diff_vs_baseline": agreement,
        "max_rel_diff_vs_float64_svd": vs_reference,
        "values_path": results_path,
        "checks": {
            "speedup": per_ckpt_base / per_ckpt_ndt >= RATIO_TARGET[name],
            "metrics_le_forward": timings["metrics_critical"] <= timings["forward"],
            "memory_flat_in_checkpoints": rss_growth <= 16.0,
            "agrees_with_baseline": max(agreement.values()) <= RTOL,
            "agrees_with_float64_svd": max(vs_reference.values()) <= RTOL,
        },
    }
    peaks = ours.get("gpu_peak_mb_per_checkpoint")
    if peaks:
        half = peaks[len(peaks) // 2 - 1] if len(peaks) > 1 else peaks[-1]
        result["gpu_peak_mb"] = {"at_half": half, "at_last": peaks[-1]}
        result["gpu_growth_mb_second_half"] = peaks[-1] - half
        result["gpu_interval_peak_median_growth_mb"] = median_growth(
            ours["gpu_interval_peak_mb_per_checkpoint"]
        )
    if "profile" in ours:
        result["critical_path_s"] = _critical_path(ours, timings)
    return result


def _critical_path(ours: dict, timings: dict) -> dict:
    """Metric time on the critical path from synchronised figures: the steady time per
    checkpoint minus what a loop with no metrics must spend (load, bare forward, write)."""
    stages = ours["profile"]["mean_s"]
    pace = ours["steady_per_checkpoint_s"] or ours["wall_s"] / ours["n"]
    floor = stages["load"] + stages["forward"] + timings["write"]
    return {
        "per_checkpoint": pace,
        "forward": stages["forward"],
        "floor_without_metrics": floor,
        "metrics": max(0.0, pace - floor),
    }


def _versus_cpu(name: str, devices: dict[str, dict]) -> dict:
    """Each accelerator's run against the CPU run of the same invocation (issue-17 targets)."""
    if "cpu" not in devices:
        return {}
    cpu = devices["cpu"]
    cpu_values = _ndt_values(cpu["values_path"])
    compared = {}
    for device, result in devices.items():
        if device == "cpu":
            continue
        values = _ndt_values(result["values_path"])
        common = sorted(set(values) & set(cpu_values))
        diff = _relative_differences(values, cpu_values, common)
        pace = {d: r["ndt"]["steady_per_checkpoint_s"] for d, r in (("cpu", cpu), (device, result))}
        speedup = pace["cpu"] / pace[device] if all(pace.values()) else None
        critical = result.get("critical_path_s")
        target = GPU_RATIO_TARGET.get(name)
        compared[device] = {
            "steady_per_checkpoint_s": pace,
            "speedup": speedup,
            "speedup_target": target,
            "max_rel_diff": diff,
            "checks": {
                "speedup": None if target is None or speedup is None else speedup >= target,
                "metrics_le_forward": (
                    None if critical is None else critical["metrics"] <= critical["forward"]
                ),
                "equal_to_cpu": max(diff.values()) <= RTOL,
                "gpu_memory_flat": (
                    result.get("gpu_interval_peak_median_growth_mb", 0.0) <= GPU_GROWTH_MB
                ),
            },
        }
    return compared


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_cuda": torch.version.cuda,
    }


def print_table(results: list[dict], info: dict, threads: int, device: str) -> None:
    print(f"machine: {info['nproc']} cores, {info['cpu']}, torch {info['torch']}, "
          f"GPU {info['cuda']}, device {device}, torch threads {threads}")  # fmt: skip
    header = (
        f"{'workload':<12}{'device':<7}{'ckpts':>7}{'base s/ck':>10}{'ndt s/ck':>9}{'ratio':>7}"
        f"{'load':>7}{'fwd':>7}{'metr':>7}{'m-crit':>7}{'write':>7}{'read':>7}"
        f"{'RSS MB':>8}{'base RSS':>9}{'dRSS':>6}{'vs base':>9}{'vs f64':>9}"
    )
    print(header)
    for r in results:
        for name, d in r["devices"].items():
            split = d["ndt_split_s"]
            print(
                f"{r['workload']:<12}{name:<7}{r['n_checkpoints']:>4}/{r['n_baseline_checkpoints']:<2}"
                f"{d['per_checkpoint_s']['baseline']:>10.3f}{d['per_checkpoint_s']['ndt']:>9.3f}"
                f"{d['speedup']:>6.1f}x"
                f"{split['load']:>7.3f}{split['forward']:>7.3f}{split['metrics']:>7.3f}"
                f"{split['metrics_critical']:>7.3f}"
                f"{split['write']:>7.3f}{d['serial_read_per_checkpoint_s']:>7.3f}"
                f"{d['ndt']['rss_peak_mb']:>8.0f}{r['baseline']['rss_peak_mb']:>9.0f}"
                f"{d['rss_growth_mb_second_half']:>6.0f}"
                f"{max(d['max_rel_diff_vs_baseline'].values()):>9.1e}"
                f"{max(d['max_rel_diff_vs_float64_svd'].values()):>9.1e}"
            )
    print("split columns: ndt seconds per checkpoint (load = waiting for the prefetched read +")
    print("load_state_dict; read = the same checkpoints read serially, for comparison;")
    print("dRSS = peak RSS growth between the middle and the last checkpoint, MB).")
    for r in results:
        for name, d in r["devices"].items():
            failed = [k for k, ok in d["checks"].items() if not ok]
            status = "all met" if not failed else "NOT met: " + ", ".join(failed)
            print(f"targets {r['workload']} ({name}): ratio >= {d['speedup_target']:.0f}x (ceiling "
                  f"{d['speedup_ceiling']:.1f}x), metrics <= forward, flat memory, 1e-4 "
                  f"agreement -> {status}")  # fmt: skip
    print("ceiling = baseline time / the baseline's own forward pass: what a tool that did")
    print("everything but the forward pass for free would reach on this machine.")
    _print_profiles(results)
    _print_versus_cpu(results)


def _print_profiles(results: list[dict]) -> None:
    """--profile: synchronised seconds per stage, the critical path, eigvalsh per width."""
    rows = [(r, n, d) for r in results for n, d in r["devices"].items() if "profile" in d["ndt"]]
    if not rows:
        return
    print()
    print("profile (synchronised, ms per checkpoint; mean over the profiled checkpoints):")
    stages = ("read", "read_to_pinned_host", "copy_pinned_to_device", "load", "forward",
              "fold", "finalize", "formulas")  # fmt: skip
    print(f"{'workload':<12}{'device':<7}" + "".join(f"{s[:10]:>11}" for s in stages)
          + f"{'s/ck':>9}{'m-crit':>9}{'GPU MB':>9}{'dGPU':>7}{'dMed':>7}")  # fmt: skip
    for r, name, d in rows:
        mean = d["ndt"]["profile"]["mean_s"]
        cells = "".join(f"{mean[s] * 1e3:>11.1f}" if s in mean else f"{'-':>11}" for s in stages)
        crit = d["critical_path_s"]
        gpu = d.get("gpu_peak_mb", {}).get("at_last")
        growth = d.get("gpu_growth_mb_second_half")
        median = d.get("gpu_interval_peak_median_growth_mb")
        print(
            f"{r['workload']:<12}{name:<7}{cells}{crit['per_checkpoint'] * 1e3:>9.1f}"
            f"{crit['metrics'] * 1e3:>9.1f}"
            + (
                f"{gpu:>9.0f}{growth:>7.1f}{median:>7.1f}"
                if gpu is not None
                else f"{'-':>9}{'-':>7}{'-':>7}"
            )
        )
    print("s/ck = steady time per checkpoint of the track run; m-crit = s/ck - (load + forward")
    print("+ write): metric work left on the critical path; GPU MB = peak allocated after the")
    print("last checkpoint, dGPU = its growth since the middle checkpoint, dMed = growth of")
    print("the median peak per checkpoint from the first half of the run to the second (MB).")
    for r, name, d in rows:
        profile = d["ndt"]["profile"]
        widths = ", ".join(
            f"{w}: host {e['host'] * 1e3:.1f}"
            + (f" / device {e['device'] * 1e3:.1f}" if "device" in e else "")
            + (
                f" / batched x{e['layers']} {e['device_batched_all_layers'] * 1e3:.1f}"
                if "device_batched_all_layers" in e
                else ""
            )
            + f" ms (x{e['layers']})"
            for w, e in profile["eigh_by_width_s"].items()
        )
        print(f"eigvalsh {r['workload']} ({name}) per Gram width: {widths}")
        placement = profile.get("eigh_placement_per_checkpoint_s")
        if placement:
            print(
                f"eigh placement {r['workload']} ({name}), s per checkpoint over "
                f"{placement['checkpoints']}: all on device {placement['all_on_device']:.4f}, "
                f"all on host {placement['all_on_host']:.4f}, default (host up to width "
                f"{placement['default_host_max_width']}) "
                f"{d['critical_path_s']['per_checkpoint']:.4f}"
            )


def _print_versus_cpu(results: list[dict]) -> None:
    """Issue 17: each accelerator against the CPU run of the same invocation."""
    for r in results:
        for device, v in r["versus_cpu"].items():
            checks = v["checks"]
            failed = [k for k, ok in checks.items() if ok is False]
            unset = [k for k, ok in checks.items() if ok is None]
            status = "all met" if not failed else "NOT met: " + ", ".join(failed)
            if unset:
                status += f" (not checked: {', '.join(unset)})"
            speedup = f"{v['speedup']:.1f}x" if v["speedup"] else "n/a"
            target = f" (target {v['speedup_target']:.0f}x)" if v["speedup_target"] else ""
            print(
                f"{device} vs cpu, {r['workload']}: {speedup}{target} per checkpoint, max rel "
                f"diff {max(v['max_rel_diff'].values()):.1e} -> {status}"
            )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="mlp,cnn,transformer",
                        help="comma-separated subset of mlp,cnn,transformer")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="3 checkpoints (baseline 2), probe samples / 4")  # fmt: skip
    parser.add_argument("--checkpoints", type=int, default=None,
                        help="checkpoints per workload (default: 50 / 30 / 40)")  # fmt: skip
    parser.add_argument("--baseline-checkpoints", type=int, default=None,
                        help="run the (slow) baseline on only the first K checkpoints; "
                        "ratios are per checkpoint (default: all)")  # fmt: skip
    parser.add_argument("--probe-scale", type=float, default=1.0,
                        help="multiply the probe sizes by this factor")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=None,
                        help="probe chunk size for ndt (default: whole probe)")  # fmt: skip
    parser.add_argument("--device", default="cpu",
                        help="ndt's device, or several comma-separated (cpu,cuda): each runs "
                        "on the same checkpoints; an accelerator is compared with cpu")  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="also time each stage of a few checkpoints alone, synchronised, "
                        "and eigvalsh per Gram width on the host and the device")  # fmt: skip
    parser.add_argument("--profile-checkpoints", type=int, default=3,
                        help="checkpoints timed by --profile, after one warm-up")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads in each subprocess")  # fmt: skip
    parser.add_argument("--json", default="bench_track.json", help="where to write results")
    parser.add_argument("--workdir", default=None,
                        help="build workloads here and keep them (default: temp dir)")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        print(f"Error: unknown workload {', '.join(unknown)}", file=sys.stderr)
        return 2
    for device in _devices(args.device):
        if device.startswith("cuda") and not torch.cuda.is_available():
            print(
                f"Error: --device {device}: CUDA is not available on this machine", file=sys.stderr
            )
            return 2
    info = machine()
    with tempfile.TemporaryDirectory(prefix="ndt-bench-") as temporary:
        root = Path(args.workdir or temporary)
        results = [run_workload(name, args, root) for name in names]
    print_table(results, info, args.threads, args.device)
    payload = {"machine": info, "args": vars(args), "results": results}
    Path(args.json).write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        _worker_main(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())
