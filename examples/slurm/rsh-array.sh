#!/bin/sh
# rsh-array.sh: one rsh run spread over the tasks of a Slurm job array.
# Each array task runs the items of its shard: --shard auto takes the shard
# and the count from SLURM_ARRAY_TASK_ID, _MIN, _MAX, _STEP and _COUNT
# (task MIN+k*STEP is shard k of COUNT), so --array below is the only place
# that says how many shards there are.
#
#   sbatch examples/slurm/rsh-array.sh job.js items.txt [OUTDIR]
#
# Each task appends its records to OUTDIR/results-ID.jsonl, next to its job
# log OUTDIR/joblog-ID (OUTDIR defaults to rsh-out, on a file system every
# node sees). A task that failed resumes from its job log when it runs
# again. Running one task again alone (sbatch --array=2) makes an array of
# one task, which Slurm numbers shard 0 of 1: give its shard instead,
#   sbatch --array=2 --export=ALL,SHARD=2/4 examples/slurm/rsh-array.sh ...
#
# examples/slurm is checked by rsh's tests: the --array line is parsed and
# the script is run once per task with Slurm's variables.
#SBATCH --job-name=rsh
#SBATCH --array=0-3
#SBATCH --cpus-per-task=4
#SBATCH --output=rsh-%A_%a.log
set -eu
script=${1:?usage: sbatch rsh-array.sh SCRIPT ITEMS [OUTDIR]}
items=${2:?usage: sbatch rsh-array.sh SCRIPT ITEMS [OUTDIR]}
out=${3:-rsh-out}
mkdir -p "$out"
id=$SLURM_ARRAY_TASK_ID
exec rsh run "$script" "$items" --shard "${SHARD:-auto}" \
	--throttle "${SLURM_CPUS_PER_TASK:-1}" --out records \
	--joblog "$out/joblog-$id" --resume >>"$out/results-$id.jsonl"
