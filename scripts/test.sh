#!/usr/bin/env bash
# The whole test suite: every unit and integration test on SQLite, then the
# integration tests again on PostgreSQL. Installs the S3 test server if missing.
#
# Environment:
#   CI=true                     a missing PostgreSQL or S3 test server fails the run
#   UPDRAFT_TEST_POSTGRES_URL   admin URL (default postgres://postgres@127.0.0.1:5432/test);
#                               each test creates and drops its own database through it
#   UPDRAFT_TEST_S3             use this S3 endpoint instead of starting moto
set -euo pipefail
cd "$(dirname "$0")/.."

under_ci() { [[ "${CI:-}" == "true" || "${CI:-}" == "1" ]]; }
fail_or_warn() {
  if under_ci; then echo "error: $1 (CI=true: required)" >&2; exit 1; fi
  echo "warning: $1; those tests are skipped" >&2
}

# --- S3 test server (moto; 5.2.5 or later answers CompleteMultipartUpload correctly)
moto_ok() {
  python3 - <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import moto.server  # noqa: F401
v = tuple(int(p) for p in version("moto").split(".")[:3])
sys.exit(0 if v >= (5, 2, 5) else 1)
PY
}
if [[ -z "${UPDRAFT_TEST_S3:-}" ]] && ! moto_ok; then
  echo "installing the S3 test server (moto)…" >&2
  python3 -m pip install --quiet --disable-pip-version-check "moto[server]>=5.2.5" >&2 || true
  moto_ok || fail_or_warn "no S3 test server (python3 -m pip install 'moto[server]>=5.2.5')"
fi

# --- PostgreSQL
export UPDRAFT_TEST_POSTGRES_URL="${UPDRAFT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
pg_up() { psql "$UPDRAFT_TEST_POSTGRES_URL" -qtAc 'select 1' >/dev/null 2>&1; }
if ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1; then
  # The machine's own cluster may just be stopped.
  for version in $(ls /etc/postgresql 2>/dev/null); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
  done
  sleep 1
fi
postgres=yes
if ! pg_up; then
  postgres=no
  fail_or_warn "PostgreSQL is not reachable at $UPDRAFT_TEST_POSTGRES_URL"
fi

echo "== tests on SQLite" >&2
UPDRAFT_TEST_DB=sqlite cargo test --workspace --locked

if [[ $postgres == yes ]]; then
  echo "== integration tests on PostgreSQL" >&2
  UPDRAFT_TEST_DB=postgres cargo test --locked --test it
fi
