#!/usr/bin/env bash
# Profiles paymirror under one pair of the benchmark suite: records every process on
# the machine (paymirror, Postgres, wrk) with perf while wrk loads paymirror's side
# of the pair's first round, then prints where the time went, by process and by
# function.
#
#   scripts/profile-bench.sh PAIR [SECONDS] [OUT]
#     PAIR     naive | group-commit | by-id | page | noop
#     SECONDS  how long to record (default 6; the round lasts 10)
#     OUT      file prefix (default /tmp/paymirror-profile-PAIR)
#
# Needs perf (Debian's linux-perf) and wrk. Builds the suite with symbols kept
# (release profile, not stripped).
set -euo pipefail

pair=${1:?usage: scripts/profile-bench.sh PAIR [SECONDS] [OUT]}
seconds=${2:-6}
out=${3:-/tmp/paymirror-profile-$pair}
cd "$(dirname "$0")/.."

export CARGO_PROFILE_RELEASE_STRIP=false
cargo build --release --example bench
./target/release/examples/bench --only "$pair" --rounds 1 --duration 10 --warmup 0 \
  >"$out.bench.md" 2>&1 &
bench=$!
# paymirror's side runs first: record once wrk is loading it.
until pgrep -x wrk >/dev/null; do
  if ! kill -0 "$bench" 2>/dev/null; then
    echo "the benchmark ended before wrk started; see $out.bench.md" >&2
    exit 1
  fi
  sleep 0.1
done
sleep 1
perf record -F 499 -a -g -o "$out.data" -- sleep "$seconds" >/dev/null 2>&1
wait "$bench"

echo "## $pair: share of samples by process and object"
perf report -i "$out.data" --no-children --sort comm,dso -q -g none 2>/dev/null | grep -v '^$' | head -12
echo
echo "## paymirror (tokio-rt-worker threads): hottest functions"
perf report -i "$out.data" --no-children --comm tokio-rt-worker --sort sym -q -g none 2>/dev/null \
  | grep -v '^$' | head -25
echo
echo "## Postgres: where its time went (inclusive)"
perf report -i "$out.data" --children --comm postgres --sort sym -q -g none 2>/dev/null \
  | grep -v '^$' | grep -v '\[k\]' | head -25
echo
echo "benchmark figures: $out.bench.md; samples: $out.data"
