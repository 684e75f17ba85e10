//! The callbacks on record (written by the inbox), page by page: what the platform
//! sent for a payment, and the callbacks that named none.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgPool, Row};

use super::callback_position::{CallbackPosition, Towards};
use crate::domain::{PaymentId, PaymentKind};

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
pub static LIST_NEWER_FOR_PAYMENT: LazyLock<String> =
    LazyLock::new(|| payment_page_statement(Towards::Newer));

/// A payment's callbacks before a position, newest first ([`payment_page_statement`]).
pub static LIST_OLDER_FOR_PAYMENT: LazyLock<String> =
    LazyLock::new(|| payment_page_statement(Towards::Older));

/// Callbacks without `idEntity` after the position `($2, $3, $4, $5)` (`$2` null: from
/// the first), oldest first, at most `$6`. The batches come in order from their partial
/// index on time, `$6 + 2` at most (one may be the position's own, with nothing left
/// after it; every other holds at least one), and the older table's rows from theirs,
/// `$6 + 1` at most (after a row of the older table at the same time, those with a
/// larger id; after a batch's, none at that time; after a time, all at it): the limits
/// are applied in the indexes. Then the batches' small arrays give the keys, and the
/// page's keys alone their bodies.
pub const LIST_IGNORED: &str = "with batches as (
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_bounded_by_the_largest_body_a_callback_may_have() {
        assert_eq!(LARGEST_BODY, crate::domain::MAX_CALLBACK_BYTES);
    }
}
