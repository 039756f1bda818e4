#!/usr/bin/env bash
# Pre-trains VoCo-B as upstream's Self-supervised/dist_B.sh does: 8 ranks on this machine, one GPU each (each rank
# binds the GPU of its local rank), batch 2 per rank (16 volumes per step), feature size 48, resuming from the
# newest checkpoint in the log folder. dist_L.sh and dist_H.sh run this script with their sizes.
#
# Settings (environment variables): RANKS (8), HOSTFILE (an Open MPI hostfile for several machines; RANKS is then
# the total over all of them), EP (cuda), PRESET (B: feature size 48), ROI (64, upstream's crop side),
# BATCH_SIZE (2, per rank), RESUME (true: from the newest checkpoint, if any), LOGDIR (runs/logs_swin_B), MPIRUN_ARGS (more mpirun options, e.g.
# --allow-run-as-root in a container).
# Arguments go on to `voco train`. See docs/distributed.md.
set -euo pipefail
cd "$(dirname "$0")/.."

ranks=${RANKS:-8}
preset=${PRESET:-B}
batch_size=${BATCH_SIZE:-2}
logdir=${LOGDIR:-runs/logs_swin_$preset}
resume=()
# Resume only where there is a checkpoint: the first run of a fresh log folder starts afresh.
if [ "${RESUME:-true}" = true ] && compgen -G "$logdir/checkpoints/*.ckpt" >/dev/null; then resume=(--resume); fi
hostfile=()
[ -n "${HOSTFILE:-}" ] && hostfile=(--hostfile "$HOSTFILE")

command -v mpirun >/dev/null || { echo "mpirun not found: install Open MPI (apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 1; }
now=$(date +"%Y%m%d_%H%M%S")
mkdir -p "$logdir"

# node runs the CLI itself (no npm or tsx launcher process in between), so that mpirun's signals reach it.
# shellcheck disable=SC2086
mpirun -np "$ranks" "${hostfile[@]}" --bind-to none -x PATH ${MPIRUN_ARGS:-} \
  node --require tsx/cjs cli/main.ts train \
    --ep "${EP:-cuda}" \
    "${resume[@]}" \
    --batch-size "$batch_size" \
    --preset "$preset" \
    --roi "${ROI:-64}" \
    --logdir "$logdir" \
    "$@" | tee "$logdir/$now.txt"
