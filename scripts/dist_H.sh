#!/usr/bin/env bash
# Pre-trains VoCo-H as upstream's Self-supervised/dist_H.sh does: 8 ranks, batch 2 per rank, feature size 192,
# starting afresh (upstream sets resume=False). Same settings as dist_B.sh.
exec env PRESET="${PRESET:-H}" RESUME="${RESUME:-false}" "$(dirname "$0")/dist_B.sh" "$@"
