#!/bin/sh
# rsh-queue-workers.sh: the tasks of a Slurm job array as workers of one
# shared work queue on NATS JetStream. Each task takes items as it has
# room, stores each result, and ends once the queue has run dry
# (--idle-exit), so a slow node holds up nothing; --array below says how
# many workers there are, not how the items are split.
#
# QUEUE is a NATS server with JetStream that every node can reach (a NATS
# cluster for production); QUEUE_TOKEN_FILE, if the server wants a token,
# a file holding it on a file system every node sees (the token stays off
# command lines). The put and the get are yours, around the array:
#
#   export QUEUE=nats://queue.example.org:4222 QUEUE_TOKEN_FILE=$HOME/.rsh-token
#   rsh queue put "$QUEUE/JOB" items.txt --nats-token-file "$QUEUE_TOKEN_FILE"
#   sbatch --wait examples/slurm/rsh-queue-workers.sh job.js
#   rsh queue get "$QUEUE/JOB_RESULTS" --out records --nats-token-file "$QUEUE_TOKEN_FILE" > results.jsonl
#
# sbatch passes the environment (QUEUE, QUEUE_TOKEN_FILE) to every task.
# A task that dies mid-item costs nothing: its items go to the other tasks
# after --ack-wait, and a task started later (sbatch again, any count)
# joins in. A worker that ran an item that failed exits 1; the item's
# result is stored like any other.
#
# examples/slurm is checked by rsh's tests: the script is run as each task
# of its --array against an embedded NATS server.
#SBATCH --job-name=rsh-queue
#SBATCH --array=0-3
#SBATCH --cpus-per-task=4
#SBATCH --output=rsh-queue-%A_%a.log
set -eu
script=${1:?usage: sbatch rsh-queue-workers.sh SCRIPT}
: "${QUEUE:?set QUEUE to the NATS server, nats://HOST:4222}"
exec rsh run "$script" --from "$QUEUE/JOB" --to "$QUEUE/JOB_RESULTS" \
	--idle-exit 30s --throttle "${SLURM_CPUS_PER_TASK:-1}" \
	${QUEUE_TOKEN_FILE:+--nats-token-file "$QUEUE_TOKEN_FILE"}
