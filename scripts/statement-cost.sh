#!/usr/bin/env bash
# Times the inbox's batch statement alone, with pgbench, against a scratch database:
# how many batches of 16 callbacks per second one connection commits, for the statement
# as written now (one callback_batches row per batch) beside the earlier shape (a
# callbacks row and two B-tree entries per callback), both scheduling the same syncs.
#
#   scripts/statement-cost.sh [SECONDS] [CLIENTS]
#
# Needs psql and pgbench (Debian's postgresql-client) and a server that DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/postgres) lets create a database. The
# database is dropped afterwards. 5,000 payments with pending syncs, as in the bench
# suite's steady state; each batch names 16 random ones.
set -euo pipefail
seconds=${1:-8}
clients=${2:-1}
server=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
cd "$(dirname "$0")/.."
name="paymirror_cost_$$"
work=$(mktemp -d)
db="${server%/*}/$name"
cleanup() {
  psql "$server" -qc "drop database if exists $name with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

psql "$server" -qc "create database $name" >/dev/null
for migration in migrations/*.sql; do
  psql "$db" -q -v ON_ERROR_STOP=1 -f "$migration" >/dev/null
done
psql "$db" -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
insert into payments (merchant_code, kind, id)
  select 'M1', 'payin', 'BENCH-' || g from generate_series(1, 5000) g;
insert into sync_jobs (merchant_code, kind, payment_id, state, priority, run_at)
  select 'M1', 'payin', 'BENCH-' || g, 'pending', 1, now() from generate_series(1, 5000) g;
SQL

# 16 random ids per batch, as pgbench variables; the arrays the writer binds.
sets=""; ids=""; kinds=""; outcomes=""; bodies=""
for i in $(seq 0 15); do
  sets+="\\set i$i random(1, 5000)"$'\n'
  ids+="${ids:+,}'BENCH-' || :i$i::text"
  kinds+="${kinds:+,}'payin'"
  outcomes+="${outcomes:+,}'accepted'"
  bodies+="${bodies:+,}jsonb_build_object('idEntity', 'BENCH-' || :i$i::text)"
done
ids="array[$ids]"; kinds="array[$kinds]"; outcomes="array[$outcomes]"; bodies="array[$bodies]"
schedule="todo as (
    select k, i from unnest($kinds, $ids) as t(k, i)
    where (select s.state = 'pending' and s.priority <= 1 and s.run_at <= now()
                  and s.rerun_priority is null
           from sync_jobs s
           where s.merchant_code = 'M1' and s.kind = t.k and s.payment_id = t.i) is not true),
  p as (insert into payments (merchant_code, kind, id) select 'M1', k, i from todo on conflict do nothing),
  j as (insert into sync_jobs (merchant_code, kind, payment_id, state, priority, run_at)
        select 'M1', k, i, 'pending', 1, now() from todo
        on conflict (merchant_code, kind, payment_id) do update set state = 'pending')"
printf '%s%s\n' "$sets" "with cb as (
  insert into callback_batches (merchant_code, kinds, payment_ids, outcomes, bodies)
  values ('M1', $kinds, $ids, $outcomes, $bodies)), $schedule
  select pg_notify('paymirror_sync', '') where exists (select from todo);" >"$work/batch_row.sql"
printf '%s%s\n' "$sets" "with cb as (
  insert into callbacks (merchant_code, kind, payment_id, outcome, body)
  select 'M1', k, i, o, b from unnest($kinds, $ids, $outcomes, $bodies) as t(k, i, o, b)), $schedule
  select pg_notify('paymirror_sync', '');" >"$work/row_per_callback.sql"

echo "batches of 16 callbacks committed per second, $clients connection(s), ${seconds} s each:"
for round in 1 2; do
  for shape in batch_row row_per_callback; do
    tps=$(pgbench "$db" -n -M prepared -c "$clients" -T "$seconds" -f "$work/$shape.sql" 2>&1 \
      | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    printf '  round %s  %-17s %8s batches/s\n' "$round" "$shape" "${tps:-failed}"
  done
done
