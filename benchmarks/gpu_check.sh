#!/usr/bin/env bash
# One call on a GPU machine measures everything issue 17 asks for (docs/performance.md, "GPU"):
#
#     bash benchmarks/gpu_check.sh
#
# 1. the machine: nvidia-smi, Python, torch, CUDA and cuDNN versions, the GPU torch sees;
# 2. the CUDA-marked tests (`python -m pytest -m cuda`): values of `ndt track --device cuda`
#    equal to the CPU run and to the fixtures' float64 reference, GPU memory flat over 20
#    checkpoints;
# 3. benchmarks/bench_track.py --device cuda,cpu --profile on the transformer workload (20
#    checkpoints), then on the mlp workload if time is left: ndt on the GPU beside ndt on all
#    the CPU cores of the same machine, a synchronised per-stage profile, eigvalsh per Gram
#    width on the host and on the device, peak GPU memory after every checkpoint;
# 4. benchmarks/results/gpu-<gpu>-<date>.json (everything) and .txt (this script's output),
#    also copied to $OUT when that is set (the device tool brings back what is under $OUT).
#
# It runs in under 4 minutes: each step has its own `timeout`, so a hang costs that step only
# (the budget: 30 + 75 + 120 s, and the mlp step gets what is left of 225 s). A failed or
# timed-out step is recorded and the next one runs; the exit status is 1 if any step failed.
#
# Python: the machine's own `python3` (override with PYTHON=...), which on a GPU image holds
# torch with CUDA. No virtual environment is made, because a GPU machine here reaches no
# package index: the repository is used in place through PYTHONPATH, with no install. The
# script stops at once, naming the module, if torch or one of ndt's imports is missing.
#
# Rehearsal without a GPU: NDT_GPU_CHECK_DEVICE=cpu NDT_GPU_CHECK_QUICK=1 bash benchmarks/gpu_check.sh
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PYTHON=${PYTHON:-python3}
DEVICE=${NDT_GPU_CHECK_DEVICE:-cuda}
QUICK=${NDT_GPU_CHECK_QUICK:-0}
BUDGET_S=225
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ndt-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
LOG="$WORK/summary.txt"
STEPS="$WORK/steps.tsv"
: >"$STEPS"
FAILED=0

log() { printf '%s\n' "$*" | tee -a "$LOG"; }

# run_step NAME LIMIT_S COMMAND...: output to the terminal and the log; never stops the script.
run_step() {
    local name=$1 limit=$2 begun=$SECONDS rc=0
    shift 2
    log "== $name (limit ${limit}s, at ${SECONDS}s) =="
    timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$LOG" || rc=$?
    if ((rc == 124 || rc == 137)); then
        log "!! $name: timed out after ${limit}s"
    elif ((rc != 0)); then
        log "!! $name: exit status $rc"
    fi
    ((rc == 0)) || FAILED=1
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - begun))" "$limit" >>"$STEPS"
}

log "ndt GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), device $DEVICE, quick $QUICK, repo $REPO"

# --- 0. can this python run ndt at all? (no step: nothing else can run without it)
if ! "$PYTHON" - <<'EOF' 2>&1 | tee -a "$LOG"; then
import importlib, sys
missing = []
for name in ("torch", "numpy", "pandas", "h5py", "safetensors", "threadpoolctl", "scipy",
             "sklearn", "matplotlib", "typer", "rich", "pytest", "ndt", "ndt_cli.main"):
    try:
        importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - report every missing import at once
        missing.append(f"{name} ({type(exc).__name__}: {exc})")
if missing:
    print("Error: this python cannot import " + "; ".join(missing), file=sys.stderr)
    print("Carry the missing packages as wheels (see the device README) or set PYTHON.",
          file=sys.stderr)
    sys.exit(1)
EOF
    log "!! stopping: $PYTHON lacks a module ndt needs"
    exit 1
fi

# --- 1. the machine
# shellcheck disable=SC2317  # run through `bash -c machine` below
machine() {
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit \
            --format=csv
    else
        echo "nvidia-smi: not found"
    fi
    "$PYTHON" - "$WORK/environment.json" <<'EOF'
import json, os, platform, sys
import numpy, safetensors, torch
info = {
    "python": sys.version.split()[0], "executable": sys.executable,
    "torch": torch.__version__, "torch_cuda": torch.version.cuda,
    "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    "numpy": numpy.__version__, "safetensors": safetensors.__version__,
    "cuda_available": torch.cuda.is_available(), "nproc": os.cpu_count(),
    "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
}
try:
    info["cpu"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                       if line.startswith("model name"))
except (OSError, StopIteration):
    info["cpu"] = platform.processor()
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info.update(gpu=p.name, gpu_memory_mb=p.total_memory // 2**20,
                capability=f"{p.major}.{p.minor}", multiprocessors=p.multi_processor_count)
for key, value in info.items():
    print(f"{key}: {value}")
json.dump(info, open(sys.argv[1], "w"), indent=2)
EOF
}
export -f machine
export PYTHON WORK
run_step machine 30 bash -c machine

# --- 2. the CUDA-marked tests (skipped, not failed, where there is no GPU)
run_step cuda-tests 75 "$PYTHON" -m pytest -m cuda -q -rs -p no:cacheprovider \
    --continue-on-collection-errors

# --- 3. the benchmarks: the GPU first, so that a timeout still leaves its worker's figures
devices="$DEVICE,cpu"
[[ $DEVICE == cpu ]] && devices=cpu
checkpoints=20
sizes=()
if [[ $QUICK == 1 ]]; then
    checkpoints=4
    sizes=(--probe-scale 0.1 --profile-checkpoints 1)
fi
bench() {
    local workload=$1 limit=$2
    mkdir -p "$WORK/$workload"
    run_step "bench-$workload" "$limit" "$PYTHON" benchmarks/bench_track.py \
        --workloads "$workload" --device "$devices" --checkpoints "$checkpoints" \
        --baseline-checkpoints 1 --threads "$(nproc)" --profile ${sizes[@]+"${sizes[@]}"} \
        --workdir "$WORK/$workload" --json "$WORK/bench-$workload.json"
}
bench transformer 120
left=$((BUDGET_S - SECONDS))
if ((left >= 40)); then
    bench mlp "$left"
else
    log "== bench-mlp skipped: ${left}s left of ${BUDGET_S}s =="
    printf 'bench-mlp\tskipped\t0\t0\n' >>"$STEPS"
fi

# --- 4. one JSON and one text file under benchmarks/results/
mkdir -p benchmarks/results
name=$("$PYTHON" - "$WORK" "$DEVICE" <<'EOF'
import json, re, sys
from datetime import datetime, timezone
from pathlib import Path
work, device = Path(sys.argv[1]), sys.argv[2]
env = json.loads((work / "environment.json").read_text()) if (work / "environment.json").exists() else {}
gpu = env.get("gpu") if device != "cpu" else None
slug = re.sub(r"[^a-z0-9]+", "-", (gpu or f"rehearsal-{device}").lower()).strip("-")
print(f"gpu-{slug}-{datetime.now(timezone.utc):%Y-%m-%d}")
EOF
)
log "== results: benchmarks/results/$name.json, .txt (total ${SECONDS}s) =="
"$PYTHON" - "$WORK" "benchmarks/results/$name.json" "$DEVICE" <<'EOF' | tee -a "$LOG"
import json, re, subprocess, sys
from datetime import datetime, timezone
from pathlib import Path
work, target, device = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

def read(path):
    return json.loads(path.read_text()) if path.exists() else None

steps = []
for line in (work / "steps.tsv").read_text().splitlines():
    name, rc, seconds, limit = line.split("\t")
    steps.append({"step": name, "exit": rc, "seconds": int(seconds), "limit_s": int(limit)})
log = (work / "summary.txt").read_text()
counts = re.compile(r"\d+ (passed|failed|skipped|deselected|errors?)\b.* in [\d.]+s")
tests = [line.strip("= ") for line in log.splitlines() if counts.search(line)]
benchmarks, targets = {}, {}
for workload in ("transformer", "mlp"):
    full = read(work / f"bench-{workload}.json")
    if full is None:  # timed out or failed: keep what its finished workers wrote
        partial = {p.name: read(p) for p in sorted((work / workload / workload).glob("*.result.json"))}
        benchmarks[workload] = {"incomplete": True, "worker_results": partial}
        continue
    benchmarks[workload] = full
    for result in full["results"]:
        for dev, versus in result.get("versus_cpu", {}).items():
            crit = result["devices"][dev].get("critical_path_s", {})
            targets[f"{workload} {dev}"] = {
                "speedup_vs_cpu": versus["speedup"], "speedup_target": versus["speedup_target"],
                "metrics_on_critical_path_s": crit.get("metrics"),
                "forward_s": crit.get("forward"),
                "max_rel_diff_vs_cpu": max(versus["max_rel_diff"].values()),
                "gpu_peak_growth_mb": result["devices"][dev].get("gpu_growth_mb_second_half"),
                "gpu_median_peak_growth_mb": result["devices"][dev].get(
                    "gpu_interval_peak_median_growth_mb"),
                "checks": versus["checks"],
            }
try:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
except (OSError, subprocess.CalledProcessError):
    commit = "unknown"
payload = {
    "command": "bash benchmarks/gpu_check.sh", "device": device,
    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": commit,
    "environment": read(work / "environment.json"), "steps": steps,
    "cuda_tests": tests[-1] if tests else None, "targets": targets, "benchmarks": benchmarks,
}
target.write_text(json.dumps(payload, indent=2))
for key, value in targets.items():
    print(f"target {key}: {json.dumps(value)}")
print(f"steps: {json.dumps(steps)}")
EOF
cp "$LOG" "benchmarks/results/$name.txt"
if [[ -n ${OUT:-} ]]; then
    mkdir -p "$OUT"
    cp "benchmarks/results/$name.json" "benchmarks/results/$name.txt" "$OUT/"
fi
echo "wrote benchmarks/results/$name.json and .txt in ${SECONDS}s; failed steps: $FAILED"
exit "$FAILED"
