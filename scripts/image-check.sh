#!/usr/bin/env bash
# Proves the container image on a machine without Docker and without an image registry.
#
#   scripts/image-check.sh [--rebuild-base-images]     (as root)
#
# 1. Builds local stand-ins for the Dockerfile's two base images, once (kept as podman tags;
#    --rebuild-base-images builds them again):
#    docker.io/library/debian:bookworm-slim     debootstrap --variant=minbase bookworm, slimmed
#                                               like the official image (no docs, no apt caches)
#    docker.io/library/rust:1.95-slim-bookworm  the same plus gcc, libc6-dev, pkg-config, this
#                                               machine's Rust 1.95 toolchain and its CA bundle
# 2. Builds the real Dockerfile with podman (docker format, so HEALTHCHECK is kept).
# 3. Runs the image on the host network against the local Postgres (a fresh database,
#    dropped at the end) and a simulator started from the same image, then proves: the
#    process is not root, a payment's callbacks are synced, the health check passes,
#    SIGTERM exits 0.
# Prints the build time, the image size and PASS or FAIL per proof. Exit status: 0 all
# proofs pass, 1 a proof failed, 2 the check could not run (the message says why).
#
# Needs podman, runc, debootstrap, curl, jq, psql and Postgres on 127.0.0.1:5432 (user
# postgres, trust auth). On Debian: apt-get install -y podman runc debootstrap curl jq
# postgresql-client. Environment: DATABASE_ADMIN_URL (the Postgres to create the database
# in), DEBIAN_MIRROR, IMAGE (the tag built), READY_TIMEOUT_SECS, SYNC_TIMEOUT_SECS.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/paymirror:image-check}
DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
RUST_VERSION=1.95.0
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE_DIR=${CACHE_DIR:-/var/tmp/paymirror-image-check}
DATABASE_ADMIN_URL=${DATABASE_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
READY_TIMEOUT_SECS=${READY_TIMEOUT_SECS:-60}
SYNC_TIMEOUT_SECS=${SYNC_TIMEOUT_SECS:-60}
STOP_TIMEOUT_SECS=20 # above server.shutdown_grace_ms (10 s)

PODMAN=(podman --runtime runc)
# No systemd here to run health-check timers; the proof runs the check by hand.
export DISABLE_HC_SYSTEMD=true
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1000:1000)
RUN_ID="$$-$RANDOM"
SIM_CONTAINER="paymirror-check-sim-$RUN_ID"
APP_CONTAINER="paymirror-check-app-$RUN_ID"
DATABASE="paymirror_image_check_${RUN_ID//-/_}"
DATABASE_CREATED=false
SCRATCH=""
REBUILD_BASE=false

declare -a PROOF_NAMES=() PROOF_RESULTS=() PROOF_DETAILS=()

log() { printf 'image-check: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

parse_args() {
  while (($#)); do
    case $1 in
      --rebuild-base-images) REBUILD_BASE=true ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
  done
}

preflight() {
  ((EUID == 0)) || die "run as root (debootstrap and rootful podman need it)"
  local tool missing=()
  for tool in podman runc debootstrap curl jq psql tar; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  ((${#missing[@]} == 0)) || die "missing: ${missing[*]} (apt-get install -y podman runc debootstrap curl jq postgresql-client)"
  psql "$DATABASE_ADMIN_URL" -qtAc 'select 1' >/dev/null ||
    die "Postgres does not answer at $DATABASE_ADMIN_URL"
}

cleanup() {
  local status=$?
  "${PODMAN[@]}" rm --force --ignore --time 0 "$APP_CONTAINER" "$SIM_CONTAINER" >/dev/null 2>&1 || true
  if $DATABASE_CREATED; then
    psql "$DATABASE_ADMIN_URL" -qtAc "drop database if exists $DATABASE with (force)" >/dev/null 2>&1 ||
      log "could not drop database $DATABASE"
  fi
  if [[ -n $SCRATCH ]]; then rm -rf "$SCRATCH"; fi
  exit "$status"
}

now_ms() { date +%s%3N; }
seconds_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

# --- base image stand-ins -------------------------------------------------------------

# Prints the directory of this machine's Rust toolchain, after checking it is $RUST_VERSION.
host_toolchain() {
  local version sysroot
  version=$(rustc --version 2>/dev/null) || die "no rustc on this machine (rustup show)"
  [[ $version == "rustc $RUST_VERSION "* ]] ||
    die "the Dockerfile builds with Rust $RUST_VERSION but this machine has: $version"
  sysroot=$(rustc --print sysroot)
  [[ -x $sysroot/bin/cargo ]] || die "no cargo in $sysroot"
  printf '%s\n' "$sysroot"
}

# debootstrap ROOTFS [--include=...]: a minimal bookworm, apt lists and caches emptied.
bootstrap_rootfs() {
  local rootfs=$1
  shift
  mkdir -p "$CACHE_DIR/debs"
  log "debootstrap bookworm into $rootfs $* (from $DEBIAN_MIRROR)"
  debootstrap --variant=minbase --cache-dir="$CACHE_DIR/debs" "$@" bookworm "$rootfs" "$DEBIAN_MIRROR" \
    >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log" >&2; die "debootstrap failed (log above)"; }
  minimize_rootfs "$rootfs"
}

# minimize_rootfs ROOTFS: what the official slim images do (debuerreotype's minimizing
# config and slimify): apt and dpkg keep no caches, docs, man pages or translations,
# also in later layers, so image sizes compare with the real base.
minimize_rootfs() {
  local rootfs=$1
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
  echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
DPKG
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 755 "$rootfs/usr/sbin/policy-rc.d"
  find "$rootfs/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
  rm -rf "$rootfs"/usr/share/{groff,info,linda,locale,man}/* "$rootfs"/usr/share/lintian/overrides/*
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
}

# import ROOTFS TAG CHANGES...: the directory as a one-layer image.
import_rootfs() {
  local rootfs=$1 tag=$2
  shift 2
  local changes=() change
  for change in "$@"; do changes+=(--change "$change"); done
  tar --numeric-owner -C "$rootfs" -cf - . | "${PODMAN[@]}" import "${changes[@]}" - "$tag" >/dev/null
  log "imported $tag"
}

build_debian_standin() {
  local rootfs=$SCRATCH/debian
  bootstrap_rootfs "$rootfs"
  import_rootfs "$rootfs" "$DEBIAN_IMAGE" 'CMD ["bash"]'
}

# Like the official image: rustup and its proxies in /usr/local/cargo/bin, the toolchain
# in /usr/local/rustup, both on PATH through CARGO_HOME and RUSTUP_HOME.
build_rust_standin() {
  local rootfs=$SCRATCH/rust toolchain name
  toolchain=$(host_toolchain)
  name=$RUST_VERSION-x86_64-unknown-linux-gnu
  bootstrap_rootfs "$rootfs" --include=ca-certificates,gcc,libc6-dev,pkg-config
  log "adding Rust toolchain $toolchain (without its docs) and the CA bundle"
  mkdir -p "$rootfs/usr/local/rustup/toolchains/$name" "$rootfs/usr/local/cargo"
  tar -C "$toolchain" --exclude=./share/doc -cf - . | tar -C "$rootfs/usr/local/rustup/toolchains/$name" -xf -
  tar -C "${CARGO_HOME:-$HOME/.cargo}" -cf - bin | tar -C "$rootfs/usr/local/cargo" -xf -
  printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n' "$name" \
    >"$rootfs/usr/local/rustup/settings.toml"
  # This machine reaches crates.io through its own CA bundle (it may hold a proxy's CA).
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  import_rootfs "$rootfs" "$RUST_IMAGE" \
    'ENV RUSTUP_HOME=/usr/local/rustup' \
    'ENV CARGO_HOME=/usr/local/cargo' \
    'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "ENV RUST_VERSION=$RUST_VERSION" \
    'CMD ["bash"]'
  "${PODMAN[@]}" run --rm "${LIMITS[@]}" "$RUST_IMAGE" cargo --version >&2 ||
    die "the rust stand-in cannot run cargo"
}

ensure_base_images() {
  local started
  started=$(now_ms)
  SCRATCH=$(mktemp -d "${TMPDIR:-/var/tmp}/paymirror-image-check.XXXXXX")
  if $REBUILD_BASE || ! "${PODMAN[@]}" image exists "$DEBIAN_IMAGE"; then
    build_debian_standin
  else
    log "cached: $DEBIAN_IMAGE"
  fi
  if $REBUILD_BASE || ! "${PODMAN[@]}" image exists "$RUST_IMAGE"; then
    build_rust_standin
  else
    log "cached: $RUST_IMAGE"
  fi
  rm -rf "$SCRATCH"
  SCRATCH=""
  BASE_SECS=$(seconds_since "$started")
}

# --- the image ---------------------------------------------------------------------------

build_image() {
  local started
  started=$(now_ms)
  log "podman build -t $IMAGE . (docker format: OCI images drop HEALTHCHECK)"
  # nice: the compile shares the machine's cores with whatever else runs here.
  nice -n 10 "${PODMAN[@]}" build --format docker --network host "${LIMITS[@]}" \
    --pull=never -t "$IMAGE" -f Dockerfile . >&2 || die "podman build failed"
  BUILD_SECS=$(seconds_since "$started")
  IMAGE_BYTES=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
}

# --- running it ----------------------------------------------------------------------------

# Prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      printf '%s\n' "$port"
      return
    fi
  done
  die "no free port found"
}

# run_container NAME ARGS...: detached, on the host network, with this machine's limits.
run_container() {
  local name=$1
  shift
  "${PODMAN[@]}" run --detach --name "$name" --network host "${LIMITS[@]}" "$@" >/dev/null
}

# wait_http URL SECONDS CONTAINER: until URL answers 2xx; fails early if CONTAINER stopped.
wait_http() {
  local url=$1 deadline=$((SECONDS + $2)) container=$3
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    if [[ $("${PODMAN[@]}" inspect --format '{{.State.Running}}' "$container") != true ]]; then
      "${PODMAN[@]}" logs --tail 30 "$container" >&2 || true
      die "$container stopped before $url answered"
    fi
    if ((SECONDS >= deadline)); then
      "${PODMAN[@]}" logs --tail 30 "$container" >&2 || true
      die "$url did not answer within $2 s"
    fi
    sleep 0.5
  done
}

start_containers() {
  SIM_PORT=$(free_port)
  APP_PORT=$(free_port)
  [[ $SIM_PORT != "$APP_PORT" ]] || APP_PORT=$(free_port)
  psql "$DATABASE_ADMIN_URL" -qtAc "create database $DATABASE" >/dev/null
  DATABASE_CREATED=true
  DATABASE_URL=${DATABASE_ADMIN_URL%/*}/$DATABASE
  APP_ENV=(
    -e "DATABASE_URL=$DATABASE_URL"
    -e "PAYMIRROR__SERVER__LISTEN=127.0.0.1:$APP_PORT"
    -e "PAYMIRROR__PLATFORM__BASE_URL=http://127.0.0.1:$SIM_PORT"
    -e PAYMIRROR__PLATFORM__MERCHANT_CODE=M1
    -e PAYMIRROR__PLATFORM__SECRET=sim-secret
  )
  log "simulator on 127.0.0.1:$SIM_PORT, paymirror on 127.0.0.1:$APP_PORT, database $DATABASE"
  run_container "$SIM_CONTAINER" --no-healthcheck "$IMAGE" \
    simulator --listen "127.0.0.1:$SIM_PORT" --callback-base-url "http://127.0.0.1:$APP_PORT"
  wait_http "http://127.0.0.1:$SIM_PORT/_sim/stats" "$READY_TIMEOUT_SECS" "$SIM_CONTAINER"
  run_container "$APP_CONTAINER" "${APP_ENV[@]}" "$IMAGE"
  wait_http "http://127.0.0.1:$APP_PORT/readyz" "$READY_TIMEOUT_SECS" "$APP_CONTAINER"
}

# record NAME PASS|FAIL DETAIL
record() {
  PROOF_NAMES+=("$1")
  PROOF_RESULTS+=("$2")
  PROOF_DETAILS+=("$3")
  log "$2 $1: $3"
}

prove_non_root() {
  local uid user
  uid=$("${PODMAN[@]}" exec "$APP_CONTAINER" id -u 2>&1) || uid="exec failed: $uid"
  user=$("${PODMAN[@]}" inspect --format '{{.Config.User}}' "$APP_CONTAINER")
  if [[ $uid =~ ^[0-9]+$ ]] && ((uid != 0)); then
    record "non-root" PASS "id -u = $uid, User = $user"
  else
    record "non-root" FAIL "id -u = $uid, User = $user"
  fi
}

# metric_sum URL REGEX: the sum of the Prometheus samples at URL whose line matches REGEX.
metric_sum() {
  curl -fsS --max-time 5 "$1" | awk -v m="$2" '$0 ~ m { s += $NF } END { print s + 0 }'
}

# The payment exists only in the simulator, so a status in paymirror can only come from
# its callbacks: stored, then a sync that fetched the payment with the platform token.
prove_callback_synced() {
  local id token body="" status="" started elapsed delivered stored detail
  local deadline=$((SECONDS + SYNC_TIMEOUT_SECS))
  id="IMGCHK-$RUN_ID"
  token=$("${PODMAN[@]}" run --rm --network host "${LIMITS[@]}" "${APP_ENV[@]}" "$IMAGE" \
    tokens create --account check) || { record "callback synced" FAIL "tokens create failed"; return; }
  started=$(now_ms)
  curl -fsS --max-time 5 -o /dev/null -H 'content-type: application/json' \
    -d "{\"kind\":\"payin\",\"id\":\"$id\",\"amount\":42.05,\"currencyCode\":\"INR\",\"finalStatus\":\"SUCCESS\",\"finalizeAfterMs\":1000}" \
    "http://127.0.0.1:$SIM_PORT/_sim/payments" ||
    { record "callback synced" FAIL "the simulator refused the payment"; return; }
  while ((SECONDS < deadline)); do
    body=$(curl -sS --max-time 5 -H "Authorization: Bearer $token" \
      "http://127.0.0.1:$APP_PORT/v1/payins/$id" 2>/dev/null) || body=""
    status=$(jq -r '.status // empty' <<<"$body" 2>/dev/null) || status=""
    [[ $status == SUCCESS ]] && break
    sleep 0.5
  done
  elapsed=$(seconds_since "$started")
  delivered=$(curl -fsS --max-time 5 "http://127.0.0.1:$SIM_PORT/_sim/stats" | jq '.callbacksDelivered') || delivered=0
  stored=$(metric_sum "http://127.0.0.1:$APP_PORT/metrics" '^paymirror_callbacks_total[{].*result="stored"') || stored=0
  detail="payin $id: status ${status:-null} after $elapsed s; simulator: $delivered callbacks answered 200; paymirror: $stored callbacks stored"
  if [[ $status == SUCCESS ]] && ((delivered > 0 && stored > 0)); then
    record "callback synced" PASS "$detail, amount $(jq -r .amount <<<"$body")"
  else
    record "callback synced" FAIL "$detail (waited up to $SYNC_TIMEOUT_SECS s)"
  fi
}

prove_healthcheck() {
  local output
  if output=$("${PODMAN[@]}" healthcheck run "$APP_CONTAINER" 2>&1); then
    record "health check" PASS "podman healthcheck run: exit 0 ${output:+($output)}"
  else
    record "health check" FAIL "podman healthcheck run: exit $? ($output)"
  fi
}

prove_sigterm_exits_zero() {
  local signal code started elapsed
  signal=$("${PODMAN[@]}" inspect --format '{{.Config.StopSignal}}' "$APP_CONTAINER")
  started=$(now_ms)
  "${PODMAN[@]}" stop --time "$STOP_TIMEOUT_SECS" "$APP_CONTAINER" >/dev/null
  elapsed=$(seconds_since "$started")
  code=$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$APP_CONTAINER")
  local detail="stop signal $signal, exited $code after $elapsed s"
  if "${PODMAN[@]}" logs "$APP_CONTAINER" 2>&1 | grep -q 'shutdown signal received'; then
    detail+=", logged \"shutdown signal received; draining\""
  fi
  if [[ $code == 0 ]] && awk -v e="$elapsed" -v t="$STOP_TIMEOUT_SECS" 'BEGIN { exit !(e < t) }'; then
    record "SIGTERM exits 0" PASS "$detail"
  else
    record "SIGTERM exits 0" FAIL "$detail (a kill after $STOP_TIMEOUT_SECS s exits 137)"
  fi
}

summary() {
  local i failed=0
  printf '\nimage-check summary\n'
  printf '  %-16s %s\n' "base images" "$BASE_SECS s"
  printf '  %-16s %s\n' "build" "$BUILD_SECS s"
  printf '  %-16s %s\n' "image size" "$(awk -v b="$IMAGE_BYTES" 'BEGIN { printf "%.1f MB (%d bytes)", b / 1e6, b }')"
  for i in "${!PROOF_NAMES[@]}"; do
    printf '  %-16s %s  %s\n' "${PROOF_NAMES[i]}" "${PROOF_RESULTS[i]}" "${PROOF_DETAILS[i]}"
    [[ ${PROOF_RESULTS[i]} == PASS ]] || failed=$((failed + 1))
  done
  printf '  %-16s %s s\n' "total" "$SECONDS"
  if ((failed > 0)); then
    printf 'image-check: %d proof(s) FAILED\n' "$failed"
    return 1
  fi
  printf 'image-check: all proofs PASS\n'
}

main() {
  parse_args "$@"
  preflight
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  ensure_base_images
  build_image
  start_containers
  prove_non_root
  prove_callback_synced
  prove_healthcheck
  prove_sigterm_exits_zero
  summary
}

main "$@"
