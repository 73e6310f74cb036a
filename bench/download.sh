#!/usr/bin/env bash
# Download benchmark: Updraft's device route (/dl/{token}) next to nginx serving the same package file, all in this run, with the same client
# (bench/download_client.py). Prints one markdown table: MB/s, the ratio to nginx, and
# the server's CPU seconds per GB (utime+stime from /proc, all nginx processes summed).
#
#   UPDRAFT_BIN  the updraft binary (default: target/release/updraft, built if missing)
#   SIZE_MIB     package payload size (default 100)
#   SECONDS_PER  seconds per measurement (default 6)
#   ROUNDS       measurements per server and mode, interleaved; the best is kept (default 3)
#
# Installs nginx (Debian's package) when missing; everything listens on 127.0.0.1 only.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UPDRAFT_BIN="${UPDRAFT_BIN:-$root/target/release/updraft}"
SIZE_MIB="${SIZE_MIB:-100}"
SECONDS_PER="${SECONDS_PER:-6}"
ROUNDS="${ROUNDS:-3}"
client="$root/bench/download_client.py"

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    echo "installing nginx" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >&2 \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >&2
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
if [ ! -x "$UPDRAFT_BIN" ]; then
    echo "building the release binary" >&2
    (cd "$root" && cargo build --release --locked --bin updraft >&2)
fi

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The package: a random image, built and signed with the CLI (zstd leaves random bytes as they are).
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$work/image"
"$UPDRAFT_BIN" package keygen --out "$work/key" >/dev/null
"$UPDRAFT_BIN" package build --key "$work/key" --manufacturer Bench --model B1 \
    --target-version 1.0 --new "$work/image" --encoding full+zstd --out "$work/package.upk" >/dev/null
size=$(stat -c %s "$work/package.upk")

# Updraft, on the embedded default (SQLite, local blob folder), logging warnings only.
port=$(free_port)
admin="bench-admin-token-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
UPDRAFT_LISTEN="127.0.0.1:$port" UPDRAFT_DATA_DIR="$work/updraft" UPDRAFT_ADMIN_TOKEN="$admin" \
    UPDRAFT_LOG=warn UPDRAFT_BUILDS_ENABLED=false "$UPDRAFT_BIN" serve > "$work/updraft.log" 2>&1 &
updraft_pid=$!
pids+=("$updraft_pid")
api="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fs "$api/healthz" >/dev/null && break; sleep 0.1; done
auth=(-H "Authorization: Bearer $admin")
pub="$(cat "$work/key.pub")"
curl -fs "${auth[@]}" -H 'content-type: application/json' \
    -d "$(python3 -c 'import json,sys; print(json.dumps({"public_key": sys.argv[1]}))' "$pub")" \
    "$api/api/v1/keys/import" >/dev/null
package_id=$(curl -fs "${auth[@]}" -H 'content-type: application/octet-stream' \
    --data-binary "@$work/package.upk" "$api/api/v1/packages" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
link=$(curl -fs "${auth[@]}" -H 'content-type: application/json' -d '{"job_key":"bench","ttl_secs":86400}' \
    "$api/api/v1/packages/$package_id/download-links" | python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])')

# nginx: the same file, loopback only, sendfile on, two workers like Updraft's default.
nport=$(free_port)
mkdir -p "$work/www" "$work/nginx-tmp"
cp "$work/package.upk" "$work/www/package.upk"
# nginx workers run as an unprivileged user: they must be able to reach the file.
chmod 755 "$work" "$work/www"
chmod 644 "$work/www/package.upk"
cat > "$work/nginx.conf" <<EOF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
daemon on;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path $work/nginx-tmp;
    proxy_temp_path $work/nginx-tmp;
    fastcgi_temp_path $work/nginx-tmp;
    uwsgi_temp_path $work/nginx-tmp;
    scgi_temp_path $work/nginx-tmp;
    types { application/octet-stream upk; }
    server {
        listen 127.0.0.1:$nport;
        root $work/www;
    }
}
EOF
"$NGINX" -c "$work/nginx.conf" -p "$work"
for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$nport/package.upk" && break; sleep 0.1; done

cmp <(curl -fs "$link") "$work/package.upk" || { echo "the device route served other bytes" >&2; exit 1; }

# CPU ticks (utime+stime) of a process and its children threads; nginx: master and workers.
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
nginx_ticks() {
    local master total=0
    master=$(cat "$work/nginx.pid")
    for p in $master $(pgrep -P "$master"); do total=$((total + $(ticks "$p"))); done
    echo "$total"
}
updraft_ticks() { ticks "$updraft_pid"; }
hz=$(getconf CLK_TCK)

# measure NAME URL STREAMS -> "mb_per_s cpu_s_per_gb"
measure() {
    local name=$1 url=$2 streams=$3 before after out
    before=$("${name}_ticks")
    out=$(python3 "$client" "$url" --size "$size" --streams "$streams" --seconds "$SECONDS_PER")
    after=$("${name}_ticks")
    python3 - "$out" "$before" "$after" "$hz" <<'EOF'
import json, sys
r = json.loads(sys.argv[1]); cpu = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4])
print(f"{r['mb_per_s']:.0f} {cpu / (r['bytes'] / 1e9):.3f}")
EOF
}

declare -A best_mb best_cpu
for round in $(seq "$ROUNDS"); do
    for streams in 1 16; do
        for name in nginx updraft; do
            url="http://127.0.0.1:$nport/package.upk"
            [ "$name" = updraft ] && url="$link"
            read -r mb cpu < <(measure "$name" "$url" "$streams")
            echo "round $round: $name, $streams stream(s): $mb MB/s, $cpu CPU s/GB" >&2
            key="$name-$streams"
            if [ -z "${best_mb[$key]:-}" ] || [ "$mb" -gt "${best_mb[$key]}" ]; then
                best_mb[$key]=$mb
                best_cpu[$key]=$cpu
            fi
        done
    done
done

echo
echo "Package: $size bytes; best of $ROUNDS interleaved ${SECONDS_PER}s measurements; client: bench/download_client.py"
echo
echo "| streams | nginx MB/s | updraft /dl MB/s | ratio | nginx CPU s/GB | updraft CPU s/GB |"
echo "|---|---:|---:|---:|---:|---:|"
for streams in 1 16; do
    n=${best_mb[nginx-$streams]} u=${best_mb[updraft-$streams]}
    ratio=$(python3 -c "print(f'{$u/$n:.2f}x')")
    label=$([ "$streams" = 1 ] && echo "1 (whole file)" || echo "16 (Range)")
    echo "| $label | $n | $u | $ratio | ${best_cpu[nginx-$streams]} | ${best_cpu[updraft-$streams]} |"
done
