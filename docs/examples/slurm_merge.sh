#!/bin/bash
#SBATCH --job-name=ndt-merge
#SBATCH --time=00:10:00
#SBATCH --output=logs/ndt-merge-%j.out
#
# Joins the shard files of slurm_array.sh into one results file, once every shard has
# succeeded: `sbatch --dependency=afterok:${array} slurm_merge.sh` (see docs/scale.md).
# `ndt merge` refuses shards made with different options or that disagree on a step,
# with one line naming the files and the field.
set -euo pipefail

RESULTS=${RESULTS:-results/pythia-160m} # as in slurm_array.sh

ndt merge "${RESULTS}".shard-*.h5 -o "${RESULTS}.h5"
