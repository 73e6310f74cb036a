#!/usr/bin/env bash
# Device import benchmark: `POST /api/v1/devices/import` of N generated devices (NDJSON, each
# with two tags, a group, a time zone and a declared inventory) into a fresh PostgreSQL
# database, timed end to end (the body streamed from a file by curl). Prints one line.
#
#   N            devices (default 100000)
#   BATCH        batch_size (default 1000)
#   UPDRAFT_BIN  the updraft binary (default: target/release/updraft, built if missing)
#   PG_ADMIN_URL an admin URL of the PostgreSQL server (default postgres://postgres@127.0.0.1:5432/postgres)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${N:-100000}"
BATCH="${BATCH:-1000}"
UPDRAFT_BIN="${UPDRAFT_BIN:-$root/target/release/updraft}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

if [ ! -x "$UPDRAFT_BIN" ]; then
    echo "building the release binary" >&2
    (cd "$root" && cargo build --release --locked --bin updraft >&2)
fi

work="$(mktemp -d)"
db="updraft_bench_import_$$"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

python3 - "$N" > "$work/devices.ndjson" <<'PY'
import json, sys
n = int(sys.argv[1])
zones = ["Europe/Paris", "America/Chicago", "Asia/Tokyo"]
out = sys.stdout
for i in range(n):
    dev_id = f"IMEI:{350000000000000 + i}"
    out.write(json.dumps({
        "dev_id": dev_id,
        "client": {"type": "md5", "name": dev_id, "secret": f"secret-{i}"},
        "server": {"type": "md5", "name": "updraft", "secret": "server-secret"},
        "tags": {"ring": ["canary", "beta", "stable"][i % 3], "site": f"s{i % 50}"},
        "groups": [f"g{i % 10}"],
        "timezone": zones[i % 3],
        "inventory": {"manufacturer": "Acme", "model": f"M{i % 3}", "fw_version": f"1.{i % 2}"},
    }, separators=(",", ":")) + "\n")
PY
bytes=$(stat -c %s "$work/devices.ndjson")

psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $db" >/dev/null
base="${PG_ADMIN_URL%/*}"
port=$(free_port)
admin="bench-admin-token-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
UPDRAFT_LISTEN="127.0.0.1:$port" UPDRAFT_DATA_DIR="$work/updraft" UPDRAFT_ADMIN_TOKEN="$admin" \
    UPDRAFT_DATABASE_URL="$base/$db" UPDRAFT_LOG=warn UPDRAFT_BUILDS_ENABLED=false \
    "$UPDRAFT_BIN" serve > "$work/updraft.log" 2>&1 &
pids+=("$!")
api="http://127.0.0.1:$port"
for _ in $(seq 300); do curl -fs "$api/readyz" >/dev/null && break; sleep 0.1; done

start=$(date +%s.%N)
if ! curl -sS -H "Authorization: Bearer $admin" -H 'content-type: application/x-ndjson' \
    -T "$work/devices.ndjson" -X POST "$api/api/v1/devices/import?batch_size=$BATCH" > "$work/report.json"; then
    echo "the import failed; the server's log:" >&2
    tail -20 "$work/updraft.log" >&2
    exit 1
fi
end=$(date +%s.%N)
python3 - "$work/report.json" "$start" "$end" "$N" "$bytes" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
secs = float(sys.argv[3]) - float(sys.argv[2])
n, size = int(sys.argv[4]), int(sys.argv[5])
assert report.get("imported") == n, report
print(f"imported {n} devices ({size / 1e6:.0f} MB of NDJSON) in {secs:.1f} s: "
      f"{n / secs:,.0f} devices/s, {report['batches_committed']} batches")
PY
