#!/usr/bin/env bash
# Campaign benchmark on PostgreSQL: for each fleet size, a fresh database gets that many
# devices by bulk import (three models on two versions, three time zones), then a campaign over
# all of them is created and planned (members selected, ranked, put in waves, counted, builds
# queued) in one request, timed; then, with every device waiting to start, the scheduler's tick
# is timed (median and p90 of the ticks that started devices, from its own debug log).
# Prints one markdown table.
#
#   SIZES        fleet sizes (default "10000 100000 1000000")
#   UPDRAFT_BIN  the updraft binary (default: target/release/updraft, built if missing)
#   PG_ADMIN_URL an admin URL of the PostgreSQL server (default postgres://postgres@127.0.0.1:5432/postgres)
#   TICKS        ticks to time per size (default 30)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIZES="${SIZES:-10000 100000 1000000}"
TICKS="${TICKS:-30}"
UPDRAFT_BIN="${UPDRAFT_BIN:-$root/target/release/updraft}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

if [ ! -x "$UPDRAFT_BIN" ]; then
    echo "building the release binary" >&2
    (cd "$root" && cargo build --release --locked --bin updraft >&2)
fi

work="$(mktemp -d)"
pids=()
dbs=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for db in "${dbs[@]}"; do
        psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "| devices | import (s) | create and plan (s) | members | tick median (ms) | tick p90 (ms) | ticks |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for n in $SIZES; do
    db="updraft_bench_campaign_${n}_$$"
    dbs+=("$db")
    psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $db" >/dev/null
    port=$(free_port)
    admin="bench-admin-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    data="$work/data-$n"
    mkdir -p "$data"
    UPDRAFT_LISTEN="127.0.0.1:$port" UPDRAFT_DATA_DIR="$data" UPDRAFT_ADMIN_TOKEN="$admin" \
        UPDRAFT_DATABASE_URL="${PG_ADMIN_URL%/*}/$db" UPDRAFT_LOG_FORMAT=json \
        UPDRAFT_LOG="warn,updraft::campaigns=debug" \
        "$UPDRAFT_BIN" serve > "$work/updraft-$n.log" 2>&1 &
    pids+=("$!")
    api="http://127.0.0.1:$port"
    for _ in $(seq 300); do curl -fs "$api/readyz" >/dev/null && break; sleep 0.1; done
    auth=(-H "Authorization: Bearer $admin")

    # Firmware: each model's two source versions and its target, with packages built.
    curl -fsS "${auth[@]}" -X POST "$api/api/v1/keys" >/dev/null
    targets=()
    for m in 0 1 2; do
        for v in 1.0 1.1 2.0; do
            head -c 65536 /dev/urandom > "$work/img"
            id=$(curl -fsS "${auth[@]}" -H 'content-type: application/octet-stream' --data-binary @"$work/img" \
                -X POST "$api/api/v1/firmware?manufacturer=Acme&model=M$m&version=$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
            [ "$v" = 2.0 ] && targets+=("$id")
        done
    done

    python3 - "$n" > "$work/devices.ndjson" <<'PY'
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
        "timezone": zones[i % 3],
        "inventory": {"manufacturer": "Acme", "model": f"M{i % 3}", "fw_version": f"1.{i % 2}"},
    }, separators=(",", ":")) + "\n")
PY
    t0=$(date +%s.%N)
    curl -fsS "${auth[@]}" -H 'content-type: application/x-ndjson' -T "$work/devices.ndjson" \
        -X POST "$api/api/v1/devices/import?batch_size=2000" > "$work/import.json"
    t1=$(date +%s.%N)
    body=$(python3 -c 'import json,sys; print(json.dumps({
        "name": "bench", "target_firmware_ids": [int(x) for x in sys.argv[1:]],
        "selector": {"models": ["M0", "M1", "M2"]},
        "waves": [{"size": "100%"}],
        "schedule": {"max_starts_per_minute": 6000},
        "start": True}))' "${targets[@]}")
    t2=$(date +%s.%N)
    curl -fsS "${auth[@]}" -H 'content-type: application/json' -d "$body" \
        -X POST "$api/api/v1/campaigns" > "$work/campaign.json"
    t3=$(date +%s.%N)
    # The deltas and full packages build, then the scheduler ticks with every device waiting.
    : > "$work/ticks"
    for _ in $(seq 900); do
        started=$(grep -c '"campaign ticked"' "$work/updraft-$n.log" || true)
        [ "$started" -ge "$TICKS" ] && break
        sleep 1
    done
    python3 - "$n" "$t0" "$t1" "$t2" "$t3" "$work/campaign.json" "$work/updraft-$n.log" "$TICKS" <<'PY'
import json, statistics, sys
n, t0, t1, t2, t3 = int(sys.argv[1]), *map(float, sys.argv[2:6])
campaign = json.load(open(sys.argv[6]))
ticks = []
started = False
for line in open(sys.argv[7]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    f = e.get("fields", e)
    msg = f.get("message") or e.get("message")
    # A tick that started devices logs "campaign ticked", then its duration as "campaign tick".
    if msg == "campaign ticked":
        started = True
    elif msg == "campaign tick" and started:
        ticks.append(float(f["duration_ms"]))
        started = False
ticks = ticks[: int(sys.argv[8])]
med = statistics.median(ticks) if ticks else float("nan")
p90 = sorted(ticks)[int(len(ticks) * 0.9) - 1] if ticks else float("nan")
print(f"| {n:,} | {t1 - t0:.1f} | {t3 - t2:.1f} | {campaign['selected']:,} | {med:.1f} | {p90:.1f} | {len(ticks)} |")
PY
    kill "${pids[-1]}" 2>/dev/null || true
done
