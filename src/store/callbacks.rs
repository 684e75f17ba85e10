//! The callbacks on record (written by the inbox): what the platform sent for a
//! payment, the callbacks that named none, and their retention.

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgPool, Row};
use tokio_util::sync::CancellationToken;

use crate::domain::{PaymentId, PaymentKind};

/// How many old callbacks one pruning statement deletes: short, never blocking ingest.
const PRUNE_BATCH: i64 = 1000;

/// A callback as received (`body` in its stored form: NUL made U+FFFD, numbers
/// `numeric` cannot hold made strings), kept as JSON text: a page of large bodies is
/// copied once from the row to the answer, never parsed into a tree.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallbackRecord {
    pub received_at: DateTime<Utc>,
    /// `accepted` (a sync was scheduled) or `ignored` (no `idEntity`).
    pub outcome: String,
    #[schema(value_type = Object)]
    #[sqlx(json)]
    pub body: Box<RawValue>,
}

/// A callback that named no payment.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IgnoredCallback {
    pub received_at: DateTime<Utc>,
    pub kind: PaymentKind,
    #[schema(value_type = Object)]
    #[sqlx(json)]
    pub body: Box<RawValue>,
}

/// Where a callback stands among those on record, the order of every page: by time
/// received, then the older one-row-per-callback table before the batches, then by
/// row, then by element of a batch's arrays. Two positions never tie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct CallbackPosition {
    received_at: DateTime<Utc>,
    /// 0: a row of `callbacks`; 1: an element of a `callback_batches` row; -1 only in
    /// [`CallbackPosition::before_time`], before both.
    source: i16,
    row_id: i64,
    /// The element's place in the batch's arrays, from 1; 0 in `callbacks`.
    element: i64,
}

/// The text of a cursor: [`CallbackPosition::cursor`] writes it, and any text of
/// this shape names a position a page may start from (the OpenAPI document's pattern).
pub const CURSOR_PATTERN: &str = r"^cb[0-9]{1,17}\.[01]\.[0-9]{1,18}\.[0-9]{1,18}$";

impl CallbackPosition {
    /// Returns the position just before every callback received at or after `time`.
    pub fn before_time(time: DateTime<Utc>) -> CallbackPosition {
        CallbackPosition {
            received_at: time,
            source: -1,
            row_id: 0,
            element: 0,
        }
    }

    /// Returns the position as an opaque cursor: `cb<micros>.<source>.<row>.<element>`.
    pub fn cursor(&self) -> String {
        format!(
            "cb{}.{}.{}.{}",
            self.received_at.timestamp_micros(),
            self.source,
            self.row_id,
            self.element
        )
    }

    /// Returns the position a cursor names, or `None` for any text not of the shape
    /// [`CURSOR_PATTERN`] describes (whatever its origin: it is request input). Any
    /// position of that shape is a place a page may start from; the counts of digits
    /// keep each number within what Postgres and `i64` hold (17 for the time: year 5138).
    pub fn from_cursor(cursor: &str) -> Option<CallbackPosition> {
        let number = |text: &str, digits: usize| {
            (text.len() <= digits && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse::<i64>().ok())
                .flatten()
        };
        let mut fields = cursor.strip_prefix("cb")?.split('.');
        let micros = number(fields.next()?, 17)?;
        let source = match fields.next()? {
            "0" => 0,
            "1" => 1,
            _ => return None,
        };
        let row_id = number(fields.next()?, 18)?;
        let element = number(fields.next()?, 18)?;
        if fields.next().is_some() {
            return None;
        }
        Some(CallbackPosition {
            received_at: DateTime::from_timestamp_micros(micros)?,
            source,
            row_id,
            element,
        })
    }
}

/// Which way a page goes from its starting position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Towards {
    /// Oldest first, the callbacks after the position.
    Newer,
    /// Newest first, the callbacks before the position.
    Older,
}

/// A page of callbacks, and the position the next page starts from if there is one.
#[derive(Debug)]
pub struct CallbackPage<T> {
    pub items: Vec<T>,
    pub next: Option<CallbackPosition>,
}

/// A row of a page statement: the item, its position, and whether more follow the page.
struct Paged<T> {
    position: CallbackPosition,
    item: T,
    more: bool,
}

impl<'r, T: FromRow<'r, PgRow>> FromRow<'r, PgRow> for Paged<T> {
    fn from_row(row: &'r PgRow) -> sqlx::Result<Self> {
        Ok(Paged {
            position: CallbackPosition::from_row(row)?,
            item: T::from_row(row)?,
            more: row.try_get("more")?,
        })
    }
}

/// Returns the page of `rows`: the next one starts after the last row if more follow.
fn into_page<T>(rows: Vec<Paged<T>>) -> CallbackPage<T> {
    let next = rows
        .last()
        .filter(|last| last.more)
        .map(|last| last.position);
    CallbackPage {
        items: rows.into_iter().map(|row| row.item).collect(),
        next,
    }
}

/// The comparison, range bound and order of a page towards newer or older callbacks.
fn direction(towards: Towards) -> (&'static str, &'static str, &'static str) {
    match towards {
        Towards::Newer => (">", "-infinity", "asc"),
        Towards::Older => ("<", "infinity", "desc"),
    }
}

/// A page of a payment's callbacks from the position `($4, $5, $6, $7)` (`$4` null:
/// from the first, or the last), at most `$8`. The keys come first: the batches naming
/// the id through their GIN index (the kind is checked per element, reading the small
/// arrays only) and rows of the older table; then, for the page's keys alone, each
/// batch's element (`bodies[n]`) or row. `more` says whether a key follows the page.
fn payment_page_statement(towards: Towards) -> String {
    let (after, unbounded, order) = direction(towards);
    let from = format!("(coalesce($4::timestamptz, '{unbounded}'), $5::int2, $6::int8, $7::int8)");
    let order_by = format!("received_at {order}, source {order}, row_id {order}, element {order}");
    format!(
        "with keys as (
           select b.created_at as received_at, 1::int2 as source, b.id as row_id, e.n as element
             from callback_batches b,
                  unnest(b.kinds, b.payment_ids) with ordinality as e(kind, payment_id, n)
            where b.merchant_code = $1 and b.payment_ids @> array[$3::text]
              and e.kind = $2 and e.payment_id = $3
              and (b.created_at, 1::int2, b.id, e.n) {after} {from}
           union all
           select created_at, 0::int2, id, 0::int8
             from callbacks
            where merchant_code = $1 and kind = $2 and payment_id = $3
              and (created_at, 0::int2, id, 0::int8) {after} {from}
            order by {order_by}
            limit $8 + 1
         ), page as (
           select * from keys order by {order_by} limit $8
         )
         select p.received_at, p.source, p.row_id, p.element,
                coalesce(b.outcomes[p.element], c.outcome) as outcome,
                coalesce(b.bodies[p.element], c.body) as body,
                (select count(*) from keys) > $8 as more
           from page p
           left join callback_batches b on p.source = 1 and b.id = p.row_id
           left join callbacks c on p.source = 0 and c.id = p.row_id
          order by {order_by}"
    )
}

/// A payment's callbacks after a position, oldest first ([`payment_page_statement`]).
pub(crate) static LIST_NEWER_FOR_PAYMENT: LazyLock<String> =
    LazyLock::new(|| payment_page_statement(Towards::Newer));

/// A payment's callbacks before a position, newest first ([`payment_page_statement`]).
pub(crate) static LIST_OLDER_FOR_PAYMENT: LazyLock<String> =
    LazyLock::new(|| payment_page_statement(Towards::Older));

/// Callbacks without `idEntity` after the position `($2, $3, $4, $5)` (`$2` null: from
/// the first), oldest first, at most `$6`. The batches come in order from their partial
/// index on time, `$6 + 2` at most (one may be the position's own, with nothing left
/// after it; every other holds at least one), and the older table's rows from theirs,
/// `$6 + 1` at most (after a row of the older table at the same time, those with a
/// larger id; after a batch's, none at that time; after a time, all at it): the limits
/// are applied in the indexes. Then the batches' small arrays give the keys, and the
/// page's keys alone their bodies.
pub(crate) const LIST_IGNORED: &str = "with batches as (
       select b.id, b.created_at, b.kinds, b.outcomes
         from callback_batches b
        where b.merchant_code = $1 and 'ignored' = any (b.outcomes)
          and (b.created_at, b.id) >= (coalesce($2::timestamptz, '-infinity'),
                                       case when $3::int2 = 1 then $4::int8 else 0 end)
        order by b.created_at, b.id
        limit $6 + 2
     ), keys as (
       select b.created_at as received_at, 1::int2 as source, b.id as row_id, e.n as element, e.kind
         from batches b,
              unnest(b.kinds, b.outcomes) with ordinality as e(kind, outcome, n)
        where e.outcome = 'ignored'
          and (b.created_at, 1::int2, b.id, e.n)
              > (coalesce($2::timestamptz, '-infinity'), $3::int2, $4::int8, $5::int8)
       union all
       (select created_at, 0::int2, id, 0::int8, kind
          from callbacks
         where merchant_code = $1 and outcome = 'ignored'
           and (created_at, id) > (coalesce($2::timestamptz, '-infinity'),
                                   case $3::int2 when 0 then $4::int8
                                                 when 1 then 9223372036854775807 else -1 end)
         order by created_at, id
         limit $6 + 1)
        order by received_at, source, row_id, element
        limit $6 + 1
     ), page as (
       select * from keys order by received_at, source, row_id, element limit $6
     )
     select p.received_at, p.source, p.row_id, p.element, p.kind,
            coalesce(b.bodies[p.element], c.body) as body,
            (select count(*) from keys) > $6 as more
       from page p
       left join callback_batches b on p.source = 1 and b.id = p.row_id
       left join callbacks c on p.source = 0 and c.id = p.row_id
      order by p.received_at, p.source, p.row_id, p.element";

/// Returns the bind values of a page's starting position: its time (`None`: unbounded),
/// source, row and element.
fn start(from: Option<CallbackPosition>) -> (Option<DateTime<Utc>>, i16, i64, i64) {
    match from {
        Some(p) => (Some(p.received_at), p.source, p.row_id, p.element),
        None => (None, 0, 0, 0),
    }
}

/// Returns up to `limit` of the payment's callbacks after `from` (oldest first) or
/// before it (newest first), at most about [`PAGE_BYTES`] of bodies, and where the next
/// page starts.
pub async fn list_callbacks(
    pool: &PgPool,
    merchant_code: &str,
    kind: PaymentKind,
    id: &PaymentId,
    from: Option<CallbackPosition>,
    towards: Towards,
    limit: i64,
) -> sqlx::Result<CallbackPage<CallbackRecord>> {
    let statement = match towards {
        Towards::Newer => &LIST_NEWER_FOR_PAYMENT,
        Towards::Older => &LIST_OLDER_FOR_PAYMENT,
    };
    fill_page(
        from,
        limit,
        |c: &CallbackRecord| &c.body,
        |from, limit| {
            let (time, source, row_id, element) = start(from);
            sqlx::query_as(statement)
                .bind(merchant_code)
                .bind(kind.as_str())
                .bind(id.as_str())
                .bind(time)
                .bind(source)
                .bind(row_id)
                .bind(element)
                .bind(limit)
                .fetch_all(pool)
        },
    )
    .await
}

/// Returns up to `limit` callbacks without `idEntity` after `from`, oldest first, at
/// most about [`PAGE_BYTES`] of bodies, and where the next page starts.
pub async fn list_ignored(
    pool: &PgPool,
    merchant_code: &str,
    from: Option<CallbackPosition>,
    limit: i64,
) -> sqlx::Result<CallbackPage<IgnoredCallback>> {
    fill_page(
        from,
        limit,
        |c: &IgnoredCallback| &c.body,
        |from, limit| {
            let (time, source, row_id, element) = start(from);
            sqlx::query_as(LIST_IGNORED)
                .bind(merchant_code)
                .bind(time)
                .bind(source)
                .bind(row_id)
                .bind(element)
                .bind(limit)
                .fetch_all(pool)
        },
    )
    .await
}

/// Most bytes of bodies a page holds: one of large callbacks ends early, with a next
/// page, rather than holding up to 1000 of them (64 MiB) in memory twice (rows, then
/// the answer) for each reader.
const PAGE_BYTES: usize = 8 << 20;

/// The largest body a callback may have (`callbacks::MAX_BODY_BYTES`). Stored, its
/// text may run a little past it (`jsonb` writes a space after each `,` and `:`), so
/// [`PAGE_BYTES`] is a bound give or take that.
const LARGEST_BODY: usize = 64 * 1024;

/// Returns a page of up to `limit` items from `from` holding at most about
/// [`PAGE_BYTES`] of bodies (`body` of each), read by `read(from, n)` as a page
/// statement's rows: as many at a time as would fit in what is left of the bound were
/// every body the largest a callback may have (128 at first: one statement for a page
/// of the default 100), so no body is read that the page does not return.
async fn fill_page<T, R, F>(
    mut from: Option<CallbackPosition>,
    limit: i64,
    body: fn(&T) -> &RawValue,
    mut read: R,
) -> sqlx::Result<CallbackPage<T>>
where
    R: FnMut(Option<CallbackPosition>, i64) -> F,
    F: std::future::Future<Output = sqlx::Result<Vec<Paged<T>>>>,
{
    let mut items = Vec::new();
    let mut bytes = 0;
    loop {
        let room = limit - items.len() as i64;
        let fits = (PAGE_BYTES.saturating_sub(bytes) / LARGEST_BODY).max(1) as i64;
        let part = into_page(read(from, room.min(fits)).await?);
        bytes += part
            .items
            .iter()
            .map(|i| body(i).get().len())
            .sum::<usize>();
        items.extend(part.items);
        let full = items.len() as i64 >= limit || bytes + LARGEST_BODY > PAGE_BYTES;
        match part.next {
            Some(next) if !full => from = Some(next),
            next => return Ok(CallbackPage { items, next }),
        }
    }
}

/// Deletes callbacks older than `retention`, a thousand rows (batches, or callbacks of
/// the older table) at a time, oldest first; returns how many callbacks. Each statement
/// looks only at the oldest rows (ids grow with time), skips rows another pruner holds,
/// and never waits on ingest.
pub async fn prune_callbacks(pool: &PgPool, retention: Duration) -> sqlx::Result<u64> {
    let mut total = 0;
    // Each table with what one of its rows holds, in callbacks.
    for (table, callbacks) in [
        ("callback_batches", "cardinality(kinds)"),
        ("callbacks", "1"),
    ] {
        let statement = prune_statement(table, callbacks);
        loop {
            let (rows, callbacks): (i64, i64) = sqlx::query_as(&statement)
                .bind(retention.as_secs_f64())
                .bind(PRUNE_BATCH)
                .fetch_one(pool)
                .await?;
            total += u64::try_from(callbacks).unwrap_or(0);
            if rows < PRUNE_BATCH {
                break;
            }
        }
    }
    Ok(total)
}

/// Deletes up to `$2` rows of `table` older than `$1` seconds; returns the rows and the
/// callbacks they held (`callbacks`: how many one row holds).
fn prune_statement(table: &str, callbacks: &str) -> String {
    format!(
        "with gone as (
           delete from {table} where id in (
             select id from (
               select id, created_at from {table} order by id limit $2 for update skip locked
             ) oldest
             where created_at < now() - make_interval(secs => $1)
           )
           returning {callbacks} as callbacks
         )
         select count(*), coalesce(sum(callbacks), 0)::bigint from gone"
    )
}

/// Merges the pending list of the batches' GIN index into the index proper (what
/// ingest would otherwise do inline when the list grows past its limit, holding up a
/// batch for tens of milliseconds); returns the index pages merged.
pub async fn merge_pending(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("select gin_clean_pending_list('callback_batches_by_payment')")
        .fetch_one(pool)
        .await
}

/// Merges the batches' pending index entries every `every` until `cancel` fires.
pub async fn merge_pending_periodically(pool: PgPool, every: Duration, cancel: CancellationToken) {
    repeat(every, cancel, || async {
        if let Err(e) = merge_pending(&pool).await {
            tracing::warn!(error = %e, "could not merge the callbacks' pending index entries");
        }
    })
    .await;
}

/// Prunes callbacks older than `retention` every `every` until `cancel` fires.
pub async fn prune_periodically(
    pool: PgPool,
    retention: Duration,
    every: Duration,
    cancel: CancellationToken,
) {
    repeat(every, cancel, || async {
        match prune_callbacks(&pool, retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(callbacks = n, "pruned callbacks past their retention"),
            Err(e) => tracing::warn!(error = %e, "could not prune old callbacks"),
        }
    })
    .await;
}

/// Runs `work` now and then every `every` after it finished, until `cancel` fires.
async fn repeat<F, Fut>(every: Duration, cancel: CancellationToken, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        work().await;
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = cancel.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_anything_else_is_refused() {
        let at = DateTime::from_timestamp_micros(1_764_000_000_123_456).expect("a time");
        for position in [
            CallbackPosition {
                received_at: at,
                source: 1,
                row_id: 42,
                element: 3,
            },
            CallbackPosition {
                received_at: at,
                source: 0,
                row_id: 7,
                element: 0,
            },
        ] {
            assert_eq!(
                CallbackPosition::from_cursor(&position.cursor()),
                Some(position)
            );
        }
        let pattern = regex::Regex::new(CURSOR_PATTERN).expect("a pattern");
        for fine in ["cb0.0.0.0", "cb99999999999999999.1.999999999999999999.7"] {
            assert!(pattern.is_match(fine) && CallbackPosition::from_cursor(fine).is_some());
        }
        for bad in [
            "",
            "cb",
            "p12",
            "cb1764000000123456.1.42",
            "cb1764000000123456.1.42.3.4",
            "cb1764000000123456.2.42.3",
            "cb1764000000123456.-1.0.0",
            "cb1764000000123456.01.42.3",
            "cb-1.1.42.3",
            "cb+1.1.42.3",
            "cb1.1. 42.3",
            "cb1.1..3",
            "cb999999999999999999.1.42.3",
            "cb1764000000123456.1.9223372036854775807.3",
            "cb1764000000123456.1.42.3\n",
        ] {
            assert!(!pattern.is_match(bad), "{bad}");
            assert_eq!(CallbackPosition::from_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_page_is_bounded_by_the_largest_body_a_callback_may_have() {
        assert_eq!(LARGEST_BODY, crate::callbacks::MAX_BODY_BYTES);
    }

    #[test]
    fn positions_order_by_time_then_table_then_row_then_element() {
        let at = DateTime::from_timestamp_micros(1_764_000_000_000_000).expect("a time");
        let position = |source, row_id, element| CallbackPosition {
            received_at: at,
            source,
            row_id,
            element,
        };
        let later = CallbackPosition {
            received_at: at + chrono::Duration::microseconds(1),
            ..position(0, 1, 0)
        };
        let mut positions = vec![
            later,
            position(1, 2, 1),
            position(1, 1, 2),
            position(0, 9, 0),
            CallbackPosition::before_time(at),
        ];
        positions.sort();
        assert_eq!(
            positions,
            [
                CallbackPosition::before_time(at),
                position(0, 9, 0),
                position(1, 1, 2),
                position(1, 2, 1),
                later
            ]
        );
    }
}
