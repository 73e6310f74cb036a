#!/usr/bin/env bash
# Shape benchmark: Updraft's builder next to HDiffPatch (lzma), bsdiff (C), xdelta3 and zstd
# on the generated input shapes (bench/shapes.py), all measured in this run.
#
#   SIZES       space-separated sizes in MiB (default: "4 16")
#   SHAPES      optional subset of shape names (default: all)
#   SHAPES_DIR  where generated pairs are kept (default: /tmp/updraft-shapes)
#   TIMEOUT     seconds before a tool's diff is given up (default: 300)
#   UPDRAFT_BIN the updraft binary (default: target/release/updraft)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${SHAPES_DIR:-/tmp/updraft-shapes}"
mkdir -p "$dir"
for size in ${SIZES:-4 16}; do
    # shellcheck disable=SC2086
    python3 "$root/bench/shapes.py" "$dir" "$size" ${SHAPES:-} >/dev/null
done
pairs=()
for size in ${SIZES:-4 16}; do
    for d in "$dir"/*-"${size}m"; do
        name="$(basename "$d")"
        if [ -z "${SHAPES:-}" ] || [[ " $SHAPES " == *" ${name%-*m} "* ]]; then
            pairs+=("$name")
        fi
    done
done
CORPUS="$dir" PAIRS="${pairs[*]}" exec bash "$root/bench/delta.sh"
