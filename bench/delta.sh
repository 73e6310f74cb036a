#!/usr/bin/env bash
# Delta benchmark: Updraft's builder next to bsdiff (C), xdelta3, zstd --patch-from and
# HDiffPatch on every corpus pair, all measured in this run. Prints one markdown table.
#
#   CORPUS      folder of <pair>/{old,new} (default: ../shared/bench/corpus from the repo root)
#   UPDRAFT_BIN the updraft binary (default: target/release/updraft), run as
#               "$UPDRAFT_BIN package build|apply ..."
#   PAIRS       optional space-separated subset of pair names
#
# Installs missing tools (Debian packages bsdiff, xdelta3, zstd, time; Python hdiffpatch).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CORPUS="${CORPUS:-$root/../shared/bench/corpus}"
export UPDRAFT_BIN="${UPDRAFT_BIN:-$root/target/release/updraft}"

need_apt=()
command -v bsdiff >/dev/null || need_apt+=(bsdiff)
command -v xdelta3 >/dev/null || need_apt+=(xdelta3)
command -v zstd >/dev/null || need_apt+=(zstd)
[ -x /usr/bin/time ] || need_apt+=(time)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing ${need_apt[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
fi
if ! python3 -c 'import hdiffpatch' 2>/dev/null; then
    echo "installing hdiffpatch" >&2
    python3 -m pip install -q hdiffpatch >&2
fi
[ -x "$UPDRAFT_BIN" ] || { echo "no updraft binary at $UPDRAFT_BIN (cargo build --release)" >&2; exit 1; }
[ -d "$CORPUS" ] || { echo "no corpus at $CORPUS" >&2; exit 1; }

exec python3 "$root/bench/delta_bench.py"
