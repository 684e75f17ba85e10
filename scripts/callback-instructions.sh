#!/usr/bin/env bash
# Counts the instructions paymirror's own process spends per callback, with valgrind's
# callgrind: `paymirror serve` on its default configuration (`info` logs, sync on
# against `paymirror simulator`), a scratch database, `wrk -c4` posting callbacks.
# Prints the instructions per callback and the share of the main parts.
#
#   scripts/callback-instructions.sh [SECONDS] [CONNECTIONS]
#
# Instruction counts do not depend on what else the machine is doing, so two builds
# can be compared on a noisy machine, where wrk's figures swing by a third from one
# run to the next (BENCHMARKS.md, stop 30). They count user-space work only: not the
# kernel's (sockets, wake-ups), not Postgres's, not waiting. Compare builds at the
# same SECONDS and CONNECTIONS only: with few connections batches are small, so the
# writer's per-batch work weighs more per callback than under the bench's 32.
#
# Needs valgrind, wrk, psql and a server that DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres) lets create a database; the database
# is dropped afterwards. Uses target/release/paymirror, or PAYMIRROR_BIN.
set -euo pipefail
seconds=${1:-15}
connections=${2:-4}
server=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
cd "$(dirname "$0")/.."
binary=${PAYMIRROR_BIN:-target/release/paymirror}
[ -x "$binary" ] || { echo "no binary at $binary: cargo build --release first" >&2; exit 1; }
name="paymirror_instr_$$"
db="${server%/*}/$name"
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$server" -qc "drop database if exists $name with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
platform_port=$(free_port)
port=$(free_port)
secret=instructions-secret

psql "$server" -qc "create database $name" >/dev/null
SIMULATOR_LISTEN="127.0.0.1:$platform_port" SIMULATOR_MERCHANT_CODE=BENCH SIMULATOR_SECRET=$secret \
  "$binary" simulator >/dev/null 2>&1 &
pids+=($!)
env -i PATH="$PATH" DATABASE_URL="$db" PAYMIRROR__SERVER__LISTEN="127.0.0.1:$port" \
  PAYMIRROR__PLATFORM__BASE_URL="http://127.0.0.1:$platform_port" \
  PAYMIRROR__PLATFORM__MERCHANT_CODE=BENCH PAYMIRROR__PLATFORM__SECRET=$secret \
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.out" \
  "$binary" serve >/dev/null 2>"$work/serve.log" &
app=$!
pids+=("$app")
for _ in $(seq 600); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
  kill -0 "$app" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.2
done

cat >"$work/callbacks.lua" <<'LUA'
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  n = n + 1
  return wrk.format(nil, "/callbacks/payins", nil, '{"idEntity":"BENCH-' .. (n % 5000 + 1) .. '"}')
end
LUA
url="http://127.0.0.1:$port"
# Warm-up, not counted: the first statements, connections and buffers.
wrk -t1 -c"$connections" -d5s -s "$work/callbacks.lua" "$url" >/dev/null
callgrind_control -i on "$app" >/dev/null 2>&1
wrk -t1 -c"$connections" -d"${seconds}s" -s "$work/callbacks.lua" "$url" >"$work/wrk.txt"
callgrind_control -d "$app" >/dev/null 2>&1
callgrind_control -i off "$app" >/dev/null 2>&1

requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
dump=$(ls "$work"/callgrind.out.* | sort -t. -k3 -n | tail -1)
callgrind_annotate --inclusive=yes --threshold=100 "$dump" >"$work/annotated.txt" 2>/dev/null
total=$(awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}' "$work/annotated.txt")
echo "callbacks: $requests in ${seconds}s over $connections connections (non-2xx: ${non2xx:-0})"
echo "instructions in paymirror's process: $total, per callback: $((total / requests))"
echo
echo "share of those instructions (inclusive; parts overlap):"
share() {
  local label=$1 pattern=$2
  local ir
  ir=$(grep -E -m1 "$pattern" "$work/annotated.txt" | awk '{gsub(",", "", $1); print $1}' || true)
  [ -n "$ir" ] && printf '  %-44s %5.1f %%  %8d per callback\n' "$label" \
    "$(echo "100 * $ir / $total" | bc -l)" "$((ir / requests))"
}
share "HTTP connections (hyper, axum, handlers)" 'paymirror::http::server::serve::\{\{closure\}\}::\{\{closure\}\}'
share "the callback handler" 'paymirror::callbacks::receive::\{\{closure\}\}'
share "the inbox writer (batches, statement)" 'paymirror::inbox::supervise::\{\{closure\}\}'
share "tracing (spans and events, all)" 'tracing_core::dispatcher::get_default'
share "  request spans made" 'paymirror::http::requests::request_span'
share "  events formatted" 'FormatEvent<S,N>>::format_event'
share "  text styling (nu_ansi_term), even uncoloured" 'nu_ansi_term::display::AnsiGenericString<str> as core::fmt::Display>::fmt'
share "access log and HTTP metrics (record)" 'paymirror::http::requests::record'
share "allocation (mimalloc)" 'mi_malloc_aligned'
