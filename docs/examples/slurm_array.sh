#!/bin/bash
#SBATCH --job-name=ndt-track
#SBATCH --array=0-7
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --output=logs/ndt-track-%A_%a.out
#
# `ndt track` on one shard of a run per array task, each writing its own results file;
# slurm_merge.sh joins them. See docs/scale.md:
#
#   mkdir -p logs results
#   array=$(sbatch --parsable slurm_array.sh)
#   sbatch --dependency=afterok:${array} slurm_merge.sh
#
# Shard I of N takes positions I, I+N, I+2N, ... of the step order, so every shard gets
# early and late checkpoints alike. A shard that failed or hit its time limit is resumed
# by submitting it again (`sbatch --array=3 slurm_array.sh`): its file keeps every
# checkpoint committed before, and only the missing ones are computed.
set -euo pipefail

# The run, the probe and where the shards go; override at submission, e.g.
# `CKPTS=/scratch/me/run/ckpts PROBE=/scratch/me/probe.safetensors sbatch slurm_array.sh`.
CKPTS=${CKPTS:-/scratch/$USER/pythia-160m/ckpts}
PROBE=${PROBE:-/scratch/$USER/probe.safetensors}
RESULTS=${RESULTS:-results/pythia-160m} # shard I writes ${RESULTS}.shard-I.h5
# The number of shards: the size of the --array above. Not SLURM_ARRAY_TASK_COUNT, which
# is 1 when a single shard is submitted again.
SHARDS=${SHARDS:-8}

mkdir -p "$(dirname "${RESULTS}")"
ndt track "${CKPTS}" --probe "${PROBE}" \
    --shard "${SLURM_ARRAY_TASK_ID}/${SHARDS}" \
    --threads "${SLURM_CPUS_PER_TASK:-1}" \
    -o "${RESULTS}.shard-${SLURM_ARRAY_TASK_ID}.h5" --quiet
