//! Every hot statement of the queue, the list API and the change feed uses an index
//! at 1,000,000 jobs (and payments, and changes): `EXPLAIN` of the very SQL the code
//! runs, against a database filled to size, as the generic plan every session uses.
//! And a page of callbacks reads the bodies it returns, no others: the blocks its
//! execution touches, by `EXPLAIN (ANALYZE, BUFFERS)`.
//!
//! A test binary of its own, not a module of `tests/api`: filling a database with a
//! million rows of each table is heavy, and cargo runs test binaries one after the
//! other, so it never runs beside the API tests that measure time.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool, Row};
use uuid::Uuid;

use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::queue::sql as queue;
use paymirror::store::sql as store;

#[derive(Clone)]
enum Arg {
    Text(&'static str),
    Int8(i64),
    Int2(i16),
    Float(f64),
    Id(Uuid),
    Time(Option<DateTime<Utc>>),
    Texts(Vec<&'static str>),
    Jsons(Vec<&'static str>),
}

/// Renders the argument as an SQL literal (`EXPLAIN EXECUTE` takes no bound parameters).
fn literal(arg: &Arg) -> String {
    let quoted = |v: &str| format!("'{}'", v.replace('\'', "''"));
    match arg {
        Arg::Text(v) => quoted(v),
        Arg::Int8(v) => v.to_string(),
        Arg::Int2(v) => v.to_string(),
        Arg::Float(v) => v.to_string(),
        Arg::Id(v) => quoted(&v.to_string()),
        Arg::Time(None) => "null".into(),
        Arg::Time(Some(t)) => quoted(&t.to_rfc3339()),
        Arg::Texts(v) => {
            let items: Vec<String> = v.iter().map(|t| quoted(t)).collect();
            format!("array[{}]::text[]", items.join(", "))
        }
        Arg::Jsons(v) => {
            let items: Vec<String> = v.iter().map(|t| quoted(t)).collect();
            format!("array[{}]::jsonb[]", items.join(", "))
        }
    }
}

/// Returns the indexes a JSON plan scans.
fn index_scans(plan: &Value, found: &mut Vec<String>) {
    if let Some(index) = plan["Index Name"].as_str() {
        found.push(index.to_owned());
    }
    for child in plan["Plans"].as_array().into_iter().flatten() {
        index_scans(child, found);
    }
}

/// Returns the indexes a JSON plan scans right under a `Limit`: in the index's order,
/// stopping at the limit (no sort of every matching row first).
fn limited_index_scans(plan: &Value, found: &mut Vec<String>) {
    for child in plan["Plans"].as_array().into_iter().flatten() {
        if plan["Node Type"] == "Limit" {
            if let Some(index) = child["Index Name"].as_str() {
                found.push(index.to_owned());
            }
        }
        limited_index_scans(child, found);
    }
}

/// Returns the scans of whole tables in a JSON plan.
fn seq_scans(plan: &Value, found: &mut Vec<String>) {
    if plan["Node Type"] == "Seq Scan" {
        found.push(plan["Relation Name"].as_str().unwrap_or("?").to_owned());
    }
    for child in plan["Plans"].as_array().into_iter().flatten() {
        seq_scans(child, found);
    }
}

/// A migrated database of its own, dropped by [`Scratch::drop`].
struct Scratch {
    admin: PgConnection,
    pool: PgPool,
    name: String,
}

impl Scratch {
    async fn create() -> Scratch {
        let server = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut url = reqwest::Url::parse(&server).expect("DATABASE_URL is a URL");
        url.set_path("/postgres");
        let name = format!("paymirror_explain_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(url.as_str()).await.expect("Postgres");
        sqlx::query(&format!(r#"create database "{name}""#))
            .execute(&mut admin)
            .await
            .expect("create database");
        url.set_path(&format!("/{name}"));
        let pool = PgPool::connect(url.as_str()).await.expect("pool");
        paymirror::migrations::migrator()
            .run(&pool)
            .await
            .expect("migrate");
        Scratch { admin, pool, name }
    }

    async fn drop(mut self) {
        self.pool.close().await;
        let _ = sqlx::query(&format!(r#"drop database "{}" with (force)"#, self.name))
            .execute(&mut self.admin)
            .await;
    }
}

/// Fills every table with `rows` rows (payments, jobs, history, callbacks, and callbacks
/// in batches of ten); `analyze` then gathers statistics, as a settled database has.
async fn fill(pool: &PgPool, rows: u32, analyze: bool) {
    let statements = [
        "insert into payments (merchant_code, kind, id, status, final)
         select 'M1', case when g % 2 = 0 then 'payin' else 'payout' end, 'P-' || g,
                case when g % 10 = 0 then 'PROCESSING' else 'SUCCESS' end, g % 10 <> 0
         from generate_series(1, 1000000) g",
        "insert into sync_jobs (merchant_code, kind, payment_id, state, priority, run_at,
                                reconcile_at, lease_until, claim_token, failing_since)
         select 'M1', case when g % 2 = 0 then 'payin' else 'payout' end, 'P-' || g,
                case g % 100 when 1 then 'pending' when 2 then 'running' when 3 then 'dead' else 'idle' end,
                0, now() - interval '1 hour',
                case when g % 10 = 0 then now() + (g % 3600) * interval '1 second' end,
                case when g % 100 = 2 then now() + interval '10 seconds' end,
                case when g % 100 = 2 then gen_random_uuid() end,
                case when g % 100 in (1, 3) then now() - interval '1 hour' end
         from generate_series(1, 1000000) g",
        "insert into payment_status_history (merchant_code, kind, payment_id, status)
         select 'M1', case when g % 2 = 0 then 'payin' else 'payout' end, 'P-' || g, 'SUCCESS'
         from generate_series(1, 1000000) g",
        "insert into callbacks (merchant_code, kind, payment_id, outcome, body)
         select 'M1', case when g % 2 = 0 then 'payin' else 'payout' end,
                case when g % 100 = 0 then null else 'P-' || g end,
                case when g % 100 = 0 then 'ignored' else 'accepted' end, '{}'::jsonb
         from generate_series(1, 1000000) g",
        "insert into callback_batches (merchant_code, kinds, payment_ids, outcomes, bodies)
         select 'M1', array_agg(case when g % 2 = 0 then 'payin' else 'payout' end order by g),
                array_agg(case when g % 100 = 0 then null else 'P-' || g end order by g),
                array_agg(case when g % 100 = 0 then 'ignored' else 'accepted' end order by g),
                array_agg('{}'::jsonb order by g)
         from generate_series(1, 1000000) g group by g / 10",
        "select gin_clean_pending_list('callback_batches_by_payment')",
    ];
    for sql in statements {
        let sql = sql.replace("1000000", &rows.to_string());
        sqlx::query(&sql).execute(pool).await.expect("fill");
    }
    if analyze {
        sqlx::query("analyze").execute(pool).await.expect("analyze");
    }
}

/// Prepares `sql` as `statement` and returns the generic plan of its execution with `args`.
async fn generic_plan(conn: &mut PgConnection, statement: &str, sql: &str, args: &[Arg]) -> Value {
    explain(conn, statement, sql, args, "format json").await
}

/// Prepares `sql` as `statement` and returns `EXPLAIN (options)` of its execution with `args`.
async fn explain(
    conn: &mut PgConnection,
    statement: &str,
    sql: &str,
    args: &[Arg],
    options: &str,
) -> Value {
    sqlx::raw_sql(&format!("prepare {statement} as {sql}"))
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("prepare {statement}: {e}"));
    let literals: Vec<String> = args.iter().map(literal).collect();
    let explain = format!(
        "explain ({options}) execute {statement}({})",
        literals.join(", ")
    );
    let row = sqlx::query(&explain)
        .fetch_one(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("explain {statement}: {e}"));
    let plan: Value = row.try_get(0).expect("a JSON plan");
    plan[0]["Plan"].clone()
}

/// Every hot statement of the queue, the API and the change feed, with arguments.
fn hot_statements() -> Vec<(&'static str, &'static str, Vec<Arg>)> {
    let token = Uuid::new_v4();
    let (kind, id) = (|| Arg::Text("payin"), || Arg::Text("P-42"));
    // A first page of 100 (merchants, kinds, statuses, since, position, limit): the
    // payments' and the stored documents' pages take the same.
    let page = vec![
        Arg::Texts(vec!["M1"]),
        kind(),
        Arg::Texts(vec![]),
        Arg::Time(None),
        Arg::Int8(500_000),
        Arg::Int8(100),
    ];
    vec![
        (
            "claim",
            queue::CLAIM,
            vec![Arg::Text("M1"), Arg::Int8(1), Arg::Float(10.0)],
        ),
        (
            "claim the newest",
            queue::CLAIM_NEWEST,
            vec![Arg::Text("M1"), Arg::Int8(1), Arg::Float(10.0)],
        ),
        (
            "extend lease",
            queue::EXTEND_LEASE,
            vec![
                Arg::Text("M1"),
                kind(),
                id(),
                Arg::Id(token),
                Arg::Float(10.0),
            ],
        ),
        ("reap", queue::REAP, vec![Arg::Int8(500)]),
        (
            "finish",
            queue::FINISH,
            vec![
                Arg::Text("M1"),
                kind(),
                id(),
                Arg::Id(token),
                Arg::Time(None),
            ],
        ),
        (
            "fail",
            queue::FAIL,
            vec![
                Arg::Text("M1"),
                kind(),
                id(),
                Arg::Id(token),
                Arg::Text("boom"),
                Arg::Float(1000.0),
                Arg::Float(300000.0),
                Arg::Float(86400.0),
                Arg::Float(3600.0),
                Arg::Int2(2),
                Arg::Float(259200.0),
            ],
        ),
        (
            "requeue",
            queue::REQUEUE,
            vec![
                Arg::Text("M1"),
                kind(),
                id(),
                Arg::Id(token),
                Arg::Float(1.0),
                Arg::Text("x"),
            ],
        ),
        (
            "resume after outage",
            queue::RESUME,
            vec![Arg::Text("M1"), Arg::Int8(500)],
        ),
        (
            "enqueue",
            queue::ENQUEUE.as_str(),
            vec![
                Arg::Text("M1"),
                Arg::Texts(vec!["payin"; 2]),
                Arg::Texts(vec!["P-1", "N-1"]),
                Arg::Int2(0),
                Arg::Text("paymirror_sync"),
            ],
        ),
        (
            "callback batch",
            paymirror::inbox::WRITE_BATCH.as_str(),
            vec![
                Arg::Text("M1"),
                Arg::Texts(vec!["payin"; 2]),
                Arg::Texts(vec!["P-1", "N-1"]),
                Arg::Int2(0),
                Arg::Texts(vec!["payin"; 3]),
                Arg::Texts(vec!["P-1", "N-1", "P-1"]),
                Arg::Texts(vec!["accepted"; 3]),
                Arg::Jsons(vec!["{}"; 3]),
                Arg::Text("paymirror_sync"),
            ],
        ),
        (
            "list dead",
            queue::LIST_DEAD,
            vec![Arg::Text("M1"), Arg::Time(None), Arg::Int8(100)],
        ),
        (
            "retry dead",
            queue::RETRY_DEAD,
            vec![
                Arg::Text("M1"),
                Arg::Time(None),
                Arg::Int2(1),
                Arg::Int8(500),
            ],
        ),
        (
            "reconcile",
            queue::PROMOTE,
            vec![
                Arg::Text("M1"),
                Arg::Int2(2),
                Arg::Int8(500),
                Arg::Float(259200.0),
            ],
        ),
        (
            "forget old reconciliations",
            queue::FORGET_OLD,
            vec![Arg::Text("M1"), Arg::Float(259200.0), Arg::Int8(500)],
        ),
        ("queue depth", queue::DEPTH, vec![Arg::Text("M1")]),
        ("oldest due", queue::OLDEST_DUE, vec![Arg::Text("M1")]),
        ("list page", store::LIST_PAYMENTS.as_str(), page.clone()),
        (
            "callbacks of a payment, a page on",
            store::LIST_NEWER_FOR_PAYMENT.as_str(),
            vec![
                Arg::Text("M1"),
                kind(),
                id(),
                Arg::Time(Some(Utc::now() - chrono::Duration::hours(1))),
                Arg::Int2(1),
                Arg::Int8(50_000),
                Arg::Int8(3),
                Arg::Int8(100),
            ],
        ),
        (
            "latest callbacks of a payment",
            store::LIST_OLDER_FOR_PAYMENT.as_str(),
            vec![
                Arg::Text("M1"),
                kind(),
                id(),
                Arg::Time(None),
                Arg::Int2(0),
                Arg::Int8(0),
                Arg::Int8(0),
                Arg::Int8(20),
            ],
        ),
        (
            "payment by id",
            store::FIND_PAYMENT.as_str(),
            vec![Arg::Text("M1"), kind(), id()],
        ),
        (
            "stored document by id",
            store::FIND_DOCUMENT.as_str(),
            vec![Arg::Text("M1"), kind(), id()],
        ),
        (
            "page of stored documents",
            store::LIST_DOCUMENTS.as_str(),
            page,
        ),
        (
            "ignored callbacks",
            store::LIST_IGNORED,
            vec![
                Arg::Text("M1"),
                Arg::Time(Some(Utc::now() - chrono::Duration::hours(1))),
                Arg::Int2(1),
                Arg::Int8(50_000),
                Arg::Int8(3),
                Arg::Int8(100),
            ],
        ),
        (
            "change feed",
            store::LIST_CHANGES,
            vec![Arg::Texts(vec!["M1"]), Arg::Int8(1000), Arg::Int8(100)],
        ),
    ]
}

/// The columns that, with `merchant_code` and `kind`, make a payment's key.
const KEY_COLUMNS: [&str; 2] = ["payment_id", "id"];

/// The tables whose `payment_id` or `id` is (part of) a payment's key; elsewhere
/// (`callbacks.id`, a batch's unnested elements) the names mean something else.
const KEYED_TABLES: [&str; 3] = ["payments", "sync_jobs", "payment_status_history"];

/// Returns whether an expression of a plan compares a payment key column.
fn names_key_column(expression: &str) -> bool {
    KEY_COLUMNS.iter().any(|column| {
        expression.match_indices(column).any(|(at, _)| {
            let before = expression[..at].chars().next_back();
            let after = expression[at + column.len()..].chars().next();
            let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            boundary(before) && boundary(after)
        })
    })
}

/// Returns the places where a JSON plan compares a payment's key outside an index
/// condition: a join that walks every job of the merchant and kind and filters on
/// the id (`Join Filter`), or a scan of a keyed table that filters on it. A scan
/// whose index condition names the key too only checks again the row its index found
/// (`sync_jobs_by_key_hash` finds a job by its joined key, then the key's columns are
/// compared): that is no offence. With `repeated_only`, only scans run once per outer
/// row (the inner side of a nested loop) count: what makes a statement cost rows of
/// the merchant per row.
fn key_filters(plan: &Value, repeated_only: bool, repeated: bool, found: &mut Vec<String>) {
    let node = plan["Node Type"].as_str().unwrap_or("?");
    if let Some(filter) = plan["Join Filter"].as_str() {
        if names_key_column(filter) {
            found.push(format!("{node} Join Filter: {filter}"));
        }
    }
    let keyed = plan["Relation Name"]
        .as_str()
        .is_some_and(|table| KEYED_TABLES.contains(&table));
    let found_by_key = plan["Index Cond"].as_str().is_some_and(names_key_column);
    if let Some(filter) = plan["Filter"].as_str() {
        if keyed && !found_by_key && names_key_column(filter) && (repeated || !repeated_only) {
            found.push(format!("{node} Filter: {filter}"));
        }
    }
    for child in plan["Plans"].as_array().into_iter().flatten() {
        let inner = node == "Nested Loop" && child["Parent Relationship"] == "Inner";
        key_filters(child, repeated_only, repeated || inner, found);
    }
}

/// The generic plan of every hot statement on `conn`, checked: the key compared in
/// an index condition, never in a filter, and no scan of a whole table.
///
/// With `without_statistics`, a single lookup of a payment by its key is let through:
/// Postgres, with no statistics, estimates one row for `merchant_code = $1 and kind =
/// $2` under about 40,000 rows, so `payments_pkey` and `payments_by_position` cost the
/// same and either may be taken (the latter then reads the merchant's entries of that
/// kind, once). What is checked there is what multiplies: no join filter on the key,
/// and no filtered scan of a keyed table run once per row of another (the inner side
/// of a nested loop).
async fn check_hot_plans(
    conn: &mut PgConnection,
    prefix: &str,
    without_statistics: bool,
) -> Vec<String> {
    // Production sessions run with `plan_cache_mode = force_generic_plan`
    // (`DatabaseSettings::pool`): what matters is each statement's generic plan.
    sqlx::raw_sql("set plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .expect("generic plans");
    let mut offenders = Vec::new();
    for (n, (name, sql, args)) in hot_statements().iter().enumerate() {
        let plan = generic_plan(conn, &format!("{prefix}_{n}"), sql, args).await;
        let mut filters = Vec::new();
        key_filters(&plan, without_statistics, false, &mut filters);
        for filter in filters {
            offenders.push(format!("{name}: the key in a filter: {filter}"));
        }
        let mut scans = Vec::new();
        seq_scans(&plan, &mut scans);
        // A handful of rows by nature: one per API token.
        scans.retain(|table| table != "api_tokens");
        if !without_statistics && !scans.is_empty() {
            offenders.push(format!("{name}: seq scan of {scans:?}"));
        }
        let mut limited = Vec::new();
        limited_index_scans(&plan, &mut limited);
        for by_time in [
            "callback_batches_ignored_by_time",
            "callbacks_ignored_by_time",
        ] {
            if !without_statistics
                && *name == "ignored callbacks"
                && !limited.iter().any(|index| index == by_time)
            {
                offenders.push(format!("{name}: not limited in {by_time}"));
            }
        }
    }
    offenders
}

#[test]
fn a_key_filter_offends_only_where_the_index_did_not_find_the_key() {
    let scan = |index_cond: &str| {
        serde_json::json!({
            "Node Type": "Index Scan",
            "Relation Name": "sync_jobs",
            "Index Cond": index_cond,
            "Filter": "((merchant_code = $1) AND (kind = t.k) AND (payment_id = t.i))",
        })
    };
    let mut found = Vec::new();
    key_filters(
        &scan("((((merchant_code || ' '::text) || kind) || ' '::text) || payment_id) = $2"),
        false,
        false,
        &mut found,
    );
    assert!(found.is_empty(), "{found:?}");
    key_filters(&scan("(merchant_code = $1)"), false, false, &mut found);
    assert_eq!(found.len(), 1, "{found:?}");
}

#[test]
fn a_filter_on_the_id_is_told_from_one_on_other_columns() {
    assert!(names_key_column("(j.payment_id = p.id)"));
    assert!(names_key_column("((merchant_code = $1) AND (id = $3))"));
    assert!(!names_key_column("(idempotency_key = $1)"));
    assert!(!names_key_column("((kind = $2) AND (claim_token = $4))"));
}

/// The offences of the hot statements on a young database: `rows` rows in every
/// table, never analyzed (autovacuum is switched off, so it cannot analyze them during
/// the test, as it would a minute or so after the rows came).
async fn young_offenders(rows: u32) -> Vec<String> {
    let scratch = Scratch::create().await;
    let pool = scratch.pool.clone();
    let tables: Vec<String> = sqlx::query_scalar(
        "select relname::text from pg_class
         where relkind = 'r' and relnamespace = 'public'::regnamespace",
    )
    .fetch_all(&pool)
    .await
    .expect("tables");
    for table in &tables {
        sqlx::query(&format!(
            r#"alter table "{table}" set (autovacuum_enabled = false)"#
        ))
        .execute(&pool)
        .await
        .expect("no autovacuum");
    }
    fill(&pool, rows, false).await;
    let analyzed: Vec<String> = sqlx::query_scalar(
        "select relname::text from pg_class
         where relname in ('payments', 'sync_jobs', 'payment_status_history') and reltuples >= 0",
    )
    .fetch_all(&pool)
    .await
    .expect("statistics");
    assert!(analyzed.is_empty(), "analyzed already: {analyzed:?}");
    let mut conn = pool.acquire().await.expect("a connection");
    let offenders = check_hot_plans(&mut conn, "young", true).await;
    drop(conn);
    scratch.drop().await;
    offenders
}

#[tokio::test]
async fn every_hot_statement_keeps_its_key_in_an_index_condition_at_200_rows_never_analyzed() {
    let offenders = young_offenders(200).await;
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[tokio::test]
async fn no_hot_statement_walks_the_merchant_per_row_at_20000_rows_never_analyzed() {
    let offenders = young_offenders(20_000).await;
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[tokio::test]
async fn every_hot_statement_uses_an_index_at_a_million_jobs() {
    let scratch = Scratch::create().await;
    let pool = scratch.pool.clone();
    fill(&pool, 1_000_000, true).await;

    let mut conn = pool.acquire().await.expect("a connection");
    let mut offenders = check_hot_plans(&mut conn, "hot", false).await;
    let cases = hot_statements();
    // Scheduling a sync finds each job by its key. When the statistics say few jobs
    // are pending (a quiet queue: the usual state), walking the pending jobs' index
    // looks cheap to the planner, and costs a scan of every pending job per callback
    // once a burst has queued thousands.
    sqlx::raw_sql("update sync_jobs set state = 'idle' where state = 'pending'; analyze sync_jobs")
        .execute(&mut *conn)
        .await
        .expect("a quiet queue");
    for (n, (name, sql, args)) in cases.iter().enumerate() {
        if !["enqueue", "callback batch"].contains(name) {
            continue;
        }
        let plan = generic_plan(&mut conn, &format!("quiet_{n}"), sql, args).await;
        let mut indexes = Vec::new();
        index_scans(&plan, &mut indexes);
        if indexes.iter().any(|index| index == "sync_jobs_due") {
            offenders.push(format!("{name}: walks sync_jobs_due ({indexes:?})"));
        }
        // The hash of the whole key finds each job (the cheaper lookup, BENCHMARKS.md
        // stop 28), not the primary key's descent.
        if !indexes.iter().any(|index| index == "sync_jobs_by_key_hash") {
            offenders.push(format!(
                "{name}: not by sync_jobs_by_key_hash ({indexes:?})"
            ));
        }
    }
    // Without the hash index (dropped by hand, or its build failed), each job is still
    // found by its key, through the primary key: slower, never a scan.
    sqlx::raw_sql("drop index sync_jobs_by_key_hash")
        .execute(&mut *conn)
        .await
        .expect("no hash index");
    for (n, (name, sql, args)) in cases.iter().enumerate() {
        if !["enqueue", "callback batch"].contains(name) {
            continue;
        }
        let plan = generic_plan(&mut conn, &format!("unhashed_{n}"), sql, args).await;
        let (mut indexes, mut scans) = (Vec::new(), Vec::new());
        index_scans(&plan, &mut indexes);
        seq_scans(&plan, &mut scans);
        if !indexes.iter().any(|index| index == "sync_jobs_pkey") || !scans.is_empty() {
            offenders.push(format!(
                "{name} without the hash index: {indexes:?}, scans {scans:?}"
            ));
        }
    }
    drop(conn);
    scratch.drop().await;
    assert!(offenders.is_empty(), "{offenders:#?}");
}

/// Returns the shared blocks (found in memory or read) that executing `sql` with `args`
/// touched: every relation's, their TOAST included.
async fn blocks_touched(conn: &mut PgConnection, statement: &str, sql: &str, args: &[Arg]) -> i64 {
    let plan = explain(conn, statement, sql, args, "analyze, buffers, format json").await;
    let blocks = |kind: &str| plan[kind].as_i64().expect("a buffer count");
    blocks("Shared Hit Blocks") + blocks("Shared Read Blocks")
}

#[tokio::test]
async fn a_page_of_callbacks_reads_the_bodies_it_returns_and_no_others() {
    let scratch = Scratch::create().await;
    // 40 batches, each with a payment's callback and one without idEntity, both with
    // 60 KiB of padding: the bodies are stored out of line (TOAST).
    sqlx::query(
        "insert into callback_batches (merchant_code, kinds, payment_ids, outcomes, bodies, created_at)
         select 'M1', '{payin, payin}', array['P-1', null], '{accepted, ignored}',
                array[jsonb_build_object('n', g, 'pad', pad), jsonb_build_object('i', g, 'pad', pad)],
                now() - make_interval(secs => 40 - g)
         from generate_series(1, 40) g,
              lateral (select string_agg(md5(g || '.' || k), '') as pad
                       from generate_series(1, 1900) k) p",
    )
    .execute(&scratch.pool)
    .await
    .expect("batches");
    let toast: i64 = sqlx::query_scalar(
        "select pg_relation_size(reltoastrelid) / current_setting('block_size')::int8
         from pg_class where relname = 'callback_batches'",
    )
    .fetch_one(&scratch.pool)
    .await
    .expect("TOAST size");
    let id = PaymentId::parse("P-1").expect("an id");
    let first = paymirror::store::list_callbacks(
        &scratch.pool,
        "M1",
        PaymentKind::Payin,
        &id,
        None,
        paymirror::store::Towards::Newer,
        1,
    )
    .await
    .expect("a page");
    assert!(first.items[0].body.get().len() > 60_000 && first.next.is_some());
    let page = |limit| {
        let from = [Arg::Time(None), Arg::Int2(0), Arg::Int8(0), Arg::Int8(0)];
        let head = [Arg::Text("M1"), Arg::Text("payin"), Arg::Text("P-1")];
        head.into_iter()
            .chain(from)
            .chain([Arg::Int8(limit)])
            .collect::<Vec<_>>()
    };
    let ignored = vec![
        Arg::Text("M1"),
        Arg::Time(None),
        Arg::Int2(0),
        Arg::Int8(0),
        Arg::Int8(0),
        Arg::Int8(1),
    ];
    let mut conn = scratch.pool.acquire().await.expect("a connection");

    let one = blocks_touched(
        &mut conn,
        "page_of_one",
        &store::LIST_NEWER_FOR_PAYMENT,
        &page(1),
    )
    .await;
    let all = blocks_touched(
        &mut conn,
        "page_of_all",
        &store::LIST_NEWER_FOR_PAYMENT,
        &page(40),
    )
    .await;
    let one_ignored =
        blocks_touched(&mut conn, "ignored_page", store::LIST_IGNORED, &ignored).await;

    eprintln!(
        "TOAST {toast} blocks; a page of 1: {one}, of 40: {all}, of 1 ignored: {one_ignored}"
    );
    assert!(
        all >= toast / 2,
        "the measure counts the bodies read: {all} of {toast}"
    );
    assert!(
        one < toast / 8,
        "a page of one read {one} blocks of {toast}"
    );
    assert!(
        one_ignored < toast / 8,
        "a page of one read {one_ignored} blocks of {toast}"
    );
    drop(conn);
    scratch.drop().await;
}
