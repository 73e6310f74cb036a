#!/usr/bin/env bash
# Every benchmark corpus pair through a running server's build queue: upload both images,
# queue the builds, download the delta (or the full package when the delta was dropped),
# verify and apply it with the offline CLI, and compare with the new image. Prints a table.
#
#   CORPUS      folder of <pair>/{old,new} (default: ../shared/bench/corpus from the repo root)
#   UPDRAFT_BIN the updraft binary (default: target/release/updraft)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CORPUS="${CORPUS:-$root/../shared/bench/corpus}"
BIN="${UPDRAFT_BIN:-$root/target/release/updraft}"
work="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
token="updraft_roundtrip-$RANDOM$RANDOM"
base="http://127.0.0.1:$port"

UPDRAFT_ADMIN_TOKEN="$token" UPDRAFT_LOG_FORMAT=json UPDRAFT_FIRMWARE_MAX_BYTES=$((1024*1024*1024)) \
  "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$work/data" 2>"$work/server.log" >/dev/null &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

api() { curl -sf -H "Authorization: Bearer $token" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

api -X POST "$base/api/v1/keys" -H 'content-type: application/json' -d '{}' | json 'd["public_key"]' > "$work/key.pub"

echo "| pair | delta kind | package bytes | queue build s | round trip |"
echo "|---|---|---:|---:|---|"
for pair_dir in "$CORPUS"/*/; do
  pair=$(basename "$pair_dir")
  upload() {
    api -X POST "$base/api/v1/firmware?manufacturer=bench&model=$pair&version=$1" \
      -H 'content-type: application/octet-stream' --data-binary "@$pair_dir/$2" | json 'd["id"]'
  }
  old=$(upload 1 old)
  new=$(upload 2 new)
  started=$(date +%s.%N)
  jobs=$(api -X POST "$base/api/v1/packages/builds" -H 'content-type: application/json' \
    -d "{\"target_firmware_id\": $new, \"source_firmware_ids\": [$old]}")
  delta_job=$(echo "$jobs" | json '[j["id"] for j in d["jobs"] if j["source_firmware_id"]][0]')
  full_job=$(echo "$jobs" | json '[j["id"] for j in d["jobs"] if not j["source_firmware_id"]][0]')
  for job in $full_job $delta_job; do
    while :; do
      state=$(api "$base/api/v1/packages/builds/$job" | json 'd["state"]')
      case $state in succeeded) break ;; failed) echo "job $job failed" >&2; exit 1 ;; esac
      sleep 0.2
    done
  done
  elapsed=$(python3 -c "import time; print(f'{time.time()-$started:.1f}')")
  package=$(api "$base/api/v1/packages/builds/$delta_job" | json 'd["delta_package_id"] or ""')
  kind=delta
  if [ -z "$package" ]; then
    package=$(api "$base/api/v1/packages/builds/$full_job" | json 'd["full_package_id"]')
    kind="full (delta dropped)"
  fi
  api "$base/api/v1/packages/$package/download" -o "$work/pkg"
  old_arg=()
  [ "$kind" = delta ] && old_arg=(--old "$pair_dir/old")
  "$BIN" package apply --pubkey "$work/key.pub" "${old_arg[@]}" "$work/pkg" --out "$work/out" >/dev/null 2>"$work/apply.err" \
    || { cat "$work/apply.err" >&2; exit 1; }
  same=no
  cmp -s "$work/out" "$pair_dir/new" && same=yes
  printf '| %s | %s | %s | %s | %s |\n' "$pair" "$kind" "$(stat -c %s "$work/pkg")" "$elapsed" "$same"
  [ $same = yes ] || exit 1
done
