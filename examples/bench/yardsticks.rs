//! The yardsticks: the simplest axum + sqlx code a user could write instead of
//! paymirror, each a tiny app of its own on 127.0.0.1:0 against the run's database.
//! They are benchmark fixtures and live here, outside the product binary.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::batches::Tally;

/// Most callbacks the group-commit writer inserts in one statement (paymirror's
/// `inbox.batch_size` default).
const GROUP_COMMIT_BATCH: usize = 512;

/// A yardstick app being served until the run's stop token fires.
pub struct Served {
    pub base: String,
    pub task: JoinHandle<()>,
}

/// Serves `app` on 127.0.0.1:0 with `axum::serve`, as the simplest service would.
pub async fn serve(app: Router, stop: CancellationToken) -> anyhow::Result<Served> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            eprintln!("yardstick on {addr} failed: {e}");
        }
    });
    Ok(Served {
        base: format!("http://{addr}"),
        task,
    })
}

/// `POST /callbacks/payins`: parse the JSON, one `INSERT` per request, 200 after it.
pub fn naive_receiver(pool: PgPool) -> Router {
    Router::new()
        .route("/callbacks/payins", post(receive_naively))
        .with_state(pool)
}

async fn receive_naively(State(pool): State<PgPool>, Json(body): Json<Value>) -> StatusCode {
    let id = body.get("idEntity").and_then(Value::as_str);
    let inserted =
        sqlx::query("insert into bench_naive (kind, payment_id, body) values ('payin', $1, $2)")
            .bind(id)
            .bind(sqlx::types::Json(&body))
            .execute(&pool)
            .await;
    match inserted {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// One callback waiting for the group-commit writer.
struct Waiting {
    payment_id: Option<String>,
    body: String,
    committed: oneshot::Sender<bool>,
}

/// `POST /callbacks/payins`: requests queue on a channel; one writer inserts all that
/// are waiting with one multi-row `INSERT … unnest` and answers each after the commit.
/// The writer counts its batches in `tally` (for the report, not for the answers).
pub fn group_commit_receiver(pool: PgPool, tally: Arc<Tally>) -> (Router, JoinHandle<()>) {
    let (queue, waiting) = mpsc::channel(4 * GROUP_COMMIT_BATCH);
    let writer = tokio::spawn(write_batches(pool, waiting, tally));
    let app = Router::new()
        .route("/callbacks/payins", post(receive_in_group))
        .with_state(queue);
    (app, writer)
}

async fn receive_in_group(
    State(queue): State<mpsc::Sender<Waiting>>,
    Json(body): Json<Value>,
) -> StatusCode {
    let (committed, answer) = oneshot::channel();
    let waiting = Waiting {
        payment_id: body.get("idEntity").and_then(Value::as_str).map(Into::into),
        body: body.to_string(),
        committed,
    };
    if queue.send(waiting).await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    match answer.await {
        Ok(true) => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The single writer: takes every callback waiting (up to a batch), inserts them in
/// one statement (its own transaction), then answers each.
async fn write_batches(pool: PgPool, mut waiting: mpsc::Receiver<Waiting>, tally: Arc<Tally>) {
    let mut batch = Vec::with_capacity(GROUP_COMMIT_BATCH);
    while waiting.recv_many(&mut batch, GROUP_COMMIT_BATCH).await > 0 {
        let started = Instant::now();
        let ids: Vec<Option<&str>> = batch.iter().map(|w| w.payment_id.as_deref()).collect();
        let bodies: Vec<&str> = batch.iter().map(|w| w.body.as_str()).collect();
        let inserted = sqlx::query(
            "insert into bench_group_commit (kind, payment_id, body)
             select 'payin', id, body::jsonb from unnest($1::text[], $2::text[]) as b(id, body)",
        )
        .bind(&ids)
        .bind(&bodies)
        .execute(&pool)
        .await
        .is_ok();
        tally.record(batch.len(), started.elapsed());
        for w in batch.drain(..) {
            let _ = w.committed.send(inserted);
        }
    }
}

/// `GET /v1/payins/{id}` and `GET /v1/payins?limit=`: one select each of the very
/// bytes paymirror serves (captured from it into `bench_documents`), returned as
/// they are: the ceiling of a read, with nothing around it.
pub fn bare_reads(pool: PgPool) -> Router {
    Router::new()
        .route("/v1/payins/{id}", get(read_one))
        .route("/v1/payins", get(read_page))
        .with_state(pool)
}

async fn read_one(State(pool): State<PgPool>, Path(id): Path<String>) -> Response {
    let doc: Result<Option<String>, _> =
        sqlx::query_scalar("select body from bench_documents where id = $1")
            .bind(id)
            .fetch_optional(&pool)
            .await;
    match doc {
        Ok(Some(doc)) => json_text(doc),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<i64>,
}

/// The first page in paymirror's shape: `{"items":[…],"nextCursor":"p<position>"}`
/// (`null` on a short page), assembled by Postgres as one text.
async fn read_page(State(pool): State<PgPool>, Query(q): Query<PageQuery>) -> Response {
    let page: Result<String, _> = sqlx::query_scalar(
        "select '{\"items\":[' || coalesce(string_agg(body, ',' order by position), '') || '],\"nextCursor\":'
                || case when count(*) = $1 then '\"p' || max(position) || '\"' else 'null' end || '}'
         from (select position, body from bench_documents order by position limit $1) p",
    )
    .bind(q.limit.unwrap_or(100).clamp(1, 1000))
    .fetch_one(&pool)
    .await;
    match page {
        Ok(page) => json_text(page),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn json_text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `GET /noop`: 200 "ok", no database — the ceiling of this machine's HTTP stack.
pub fn noop() -> Router {
    Router::new().route("/noop", get(|| async { "ok" }))
}
