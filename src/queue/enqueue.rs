//! Scheduling syncs, coalesced (SPEC §5): a pending job gains no second fetch, a
//! running one exactly one more.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use sqlx::PgConnection;

use super::{Priority, NOTIFY_CHANNEL};
use crate::domain::{PaymentId, PaymentKind};

/// The payments of `$2`/`$3` (kinds, ids) whose sync job needs writing: all but those
/// already pending, due and at least as urgent as `$4`, with no rerun asked. A burst
/// of callbacks for payments already queued then writes, and locks, no row at all.
/// `known` says the payment has a job, so a row (a job references its payment).
///
/// The job is found by its whole key alone: the conditions are in the select list,
/// not the `where` clause, so the planner cannot take `sync_jobs_due` instead and walk
/// every pending job for each payment (it did, when the table's statistics said few
/// jobs were pending). The key is compared joined with spaces, as
/// `sync_jobs_by_key_hash` (migration `20261207000002`) holds it: a hash and one bucket
/// page per callback instead of a descent of `sync_jobs_pkey` comparing three text
/// columns at every level, which was the largest part of a callback batch's statement
/// after its commit (BENCHMARKS.md, stop 28). The planner takes it young or settled
/// (`tests/explain.rs`). The key's columns are compared as well, so that without the
/// hash index (dropped by hand, or its build failed) the primary key still finds the
/// job: slower, never a scan. Merchant codes and kinds hold no space, so two keys are
/// equal exactly when their joined forms are. Reading a pending job that a worker
/// claims a moment later is safe: its fetch starts after this statement's snapshot, so
/// after the callback. Rows keep the order of `$2`/`$3`: the order the writes lock them in.
const NEEDING_A_WRITE: &str = "select k, i, queued is not null as known from (
           select k, i,
                  (select s.state = 'pending' and s.priority <= $4 and s.run_at <= now()
                          and s.rerun_priority is null
                   from sync_jobs s
                   where (s.merchant_code || ' ' || s.kind || ' ' || s.payment_id)
                         = ($1::text || ' ' || t.k || ' ' || t.i)
                     and s.merchant_code = $1 and s.kind = t.k and s.payment_id = t.i) as queued
           from unnest($2::text[], $3::text[]) as t(k, i)
           offset 0) j
         where queued is not true";

/// The payments never seen before. One with a job is left out before the insert, not
/// by its conflict: a row proposed for insertion fires the payment document's trigger
/// (migration `20261207000001`) even when it then conflicts. A known payment without
/// a job (written by hand, or by a release before jobs existed) conflicts, and is left
/// as it is.
const INSERT_PAYMENTS: &str = "insert into payments (merchant_code, kind, id)
         select $1, k, i from todo where not known
         on conflict do nothing";

const UPSERT_JOBS: &str = "insert into sync_jobs (merchant_code, kind, payment_id, state, priority, run_at)
         select $1, k, i, 'pending', $4, now() from todo
         on conflict (merchant_code, kind, payment_id) do update set
           state = case when sync_jobs.state = 'running' then 'running' else 'pending' end,
           priority = case
             when sync_jobs.state = 'pending' then least(sync_jobs.priority, excluded.priority)
             when sync_jobs.state = 'running' then sync_jobs.priority
             else excluded.priority end,
           run_at = case sync_jobs.state when 'running' then sync_jobs.run_at
             when 'pending' then least(sync_jobs.run_at, now()) else now() end,
           attempts = case when sync_jobs.state in ('idle', 'dead') then 0 else sync_jobs.attempts end,
           failing_since = case when sync_jobs.state in ('idle', 'dead') then null else sync_jobs.failing_since end,
           rerun_priority = case when sync_jobs.state = 'running'
             then least(sync_jobs.rerun_priority, excluded.priority) else null end,
           updated_at = now()
         where not (sync_jobs.state = 'pending' and sync_jobs.priority <= excluded.priority
           and sync_jobs.run_at <= now() and sync_jobs.rerun_priority is null)";

/// [`enqueue_syncs`]'s one statement.
pub static ENQUEUE: LazyLock<String> =
    LazyLock::new(|| format!("with {} select pg_notify($5, '')", enqueue_ctes()));

/// Schedules a sync of each payment, inside the caller's transaction, and returns
/// how many distinct payments were touched.
///
/// Creates the payment row if it was never seen. Coalesces per SPEC §5: a pending
/// job only moves earlier (never gains a second fetch); a running one is marked for
/// exactly one more fetch; idle and dead ones become pending, due now, with fresh
/// attempts (an old `run_at` would jump them ahead of fresh callbacks). A job
/// already pending, due and at least as urgent is left as it is: a burst of
/// callbacks for one payment writes its job once, not once per callback.
/// Workers are notified when the transaction commits.
pub async fn enqueue_syncs(
    conn: &mut PgConnection,
    merchant_code: &str,
    payments: &[(PaymentKind, PaymentId)],
    priority: Priority,
) -> sqlx::Result<usize> {
    // One statement may not update the same row twice: deduplicate first.
    let (kinds, ids) = distinct_payments(payments);
    if kinds.is_empty() {
        return Ok(0);
    }
    sqlx::query(&ENQUEUE)
        .bind(merchant_code)
        .bind(&kinds)
        .bind(&ids)
        .bind(priority.as_i16())
        .bind(NOTIFY_CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(kinds.len())
}

/// The writes of [`enqueue_syncs`] as common table expressions (`todo`, `p`, `j`) for
/// one statement that also writes other rows: `$1` merchant, `$2` kinds, `$3` ids
/// (distinct pairs, in byte order), `$4` priority. Workers are notified by the caller.
pub fn enqueue_ctes() -> String {
    format!("todo as ({NEEDING_A_WRITE}), p as ({INSERT_PAYMENTS}), j as ({UPSERT_JOBS})")
}

/// Returns the distinct payments of `payments` in byte order (the order every bulk
/// statement locks rows in), as the kind and id arrays the statements take.
pub fn distinct_payments(payments: &[(PaymentKind, PaymentId)]) -> (Vec<&'static str>, Vec<&str>) {
    let unique: BTreeSet<&(PaymentKind, PaymentId)> = payments.iter().collect();
    unique
        .into_iter()
        .map(|(k, id)| (k.as_str(), id.as_str()))
        .unzip()
}
