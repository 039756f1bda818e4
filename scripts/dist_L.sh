#!/usr/bin/env bash
# Pre-trains VoCo-L as upstream's Self-supervised/dist_L.sh does: 8 ranks, batch 2 per rank, feature size 96,
# resuming. Same settings as dist_B.sh.
exec env PRESET="${PRESET:-L}" RESUME="${RESUME:-true}" "$(dirname "$0")/dist_B.sh" "$@"
