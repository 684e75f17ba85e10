use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{header, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::time::Instant;

use super::document::PlatformPayment;
use super::limiter::{RateLimiter, Reservation};
use super::token::{lifetime_from_claims, refresh_deadline, CachedToken};
use crate::config::PlatformSettings;
use crate::domain::{PaymentId, PaymentKind};

/// The platform's API major version, sent on every request.
const API_VERSION: &str = "2";
/// Least privilege: read operations only.
const OPERATIONS: [&str; 2] = ["GET /payins/.*", "GET /payouts/.*"];

/// How a platform call failed; the worker chooses retry, pause or `dead` from this.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the platform rejected our token (401)")]
    Unauthorized,
    #[error("the platform refused the operation (403): {0}")]
    Forbidden(String),
    #[error("the platform refused the merchant (406 {0})")]
    MerchantRejected(String),
    #[error("the platform does not know this payment (410)")]
    NotFound,
    #[error("the platform throttled us (429)")]
    Throttled { retry_after: Option<Duration> },
    #[error("the platform failed ({0})")]
    Server(u16),
    #[error("unexpected answer from the platform ({0})")]
    Unexpected(u16),
    #[error("could not reach the platform: {0}")]
    Transport(String),
    #[error("the platform's answer did not parse: {0}")]
    InvalidBody(String),
}

/// Talks to the platform on behalf of one merchant. Every request it sends goes
/// through the shared [`RateLimiter`] first, token requests included.
pub struct PlatformClient {
    http: reqwest::Client,
    base_url: String,
    merchant_code: String,
    secret: SecretString,
    validity_secs: u32,
    limiter: Arc<RateLimiter>,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    generations: AtomicU64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
}

#[derive(Deserialize, Default)]
struct ErrorAnswer {
    code: Option<String>,
    description: Option<String>,
}

impl PlatformClient {
    pub fn new(settings: &PlatformSettings, limiter: Arc<RateLimiter>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .timeout(Duration::from_millis(settings.request_timeout_ms))
            .user_agent(concat!("paymirror/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(PlatformClient {
            http,
            base_url: settings.base_url.trim_end_matches('/').to_owned(),
            merchant_code: settings.merchant_code.clone(),
            secret: settings.secret.clone(),
            validity_secs: settings.token_validity_secs,
            limiter,
            token: tokio::sync::Mutex::new(None),
            generations: AtomicU64::new(0),
        })
    }

    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    /// Fetches the authoritative state of a payment. A 401 triggers one token
    /// refresh and one retry; every other failure is returned classified.
    pub async fn fetch_payment(
        &self,
        kind: PaymentKind,
        id: &PaymentId,
    ) -> Result<PlatformPayment, FetchError> {
        self.fetch_payment_with(kind, id, None).await
    }

    /// Like [`fetch_payment`](Self::fetch_payment), for a caller that already reserved
    /// the slot of its first request (the worker reserves it before choosing the job).
    pub async fn fetch_payment_with(
        &self,
        kind: PaymentKind,
        id: &PaymentId,
        mut slot: Option<Reservation>,
    ) -> Result<PlatformPayment, FetchError> {
        // `PaymentId` admits only [A-Za-z0-9_-]: safe in a path as is.
        let url = format!("{}/{}/{}", self.base_url, kind.plural(), id);
        let mut refreshed = false;
        loop {
            let (token, generation) = self.current_token(&mut slot).await?;
            let request = self.http.get(&url).bearer_auth(token.expose_secret());
            let response = self.send(request, kind.plural(), &mut slot).await?;
            match response.status() {
                StatusCode::OK => return parse_payment(response).await,
                StatusCode::UNAUTHORIZED if !refreshed => {
                    self.drop_token(generation).await;
                    refreshed = true;
                }
                _ => return Err(classify(response).await),
            }
        }
    }

    /// Returns a valid token, requesting a new one if needed. The lock is held while
    /// requesting, so only one task refreshes and the others reuse its result; it is
    /// never held while waiting for a rate-limit slot, which could wait on the holders
    /// of other reservations who are themselves waiting for this lock.
    async fn current_token(
        &self,
        slot: &mut Option<Reservation>,
    ) -> Result<(SecretString, u64), FetchError> {
        if let Some(valid) = self.cached_token().await {
            return Ok(valid);
        }
        let reservation = match slot.take() {
            Some(reservation) => reservation,
            None => self.limiter.reserve().await,
        };
        let mut cache = self.token.lock().await;
        if let Some(valid) = usable(&cache) {
            // Another task refreshed meanwhile: keep the slot for the payment request.
            *slot = Some(reservation);
            return Ok(valid);
        }
        let value = self.request_token(reservation).await?;
        let lifetime =
            lifetime_from_claims(&value).unwrap_or(Duration::from_secs(self.validity_secs.into()));
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        *cache = Some(CachedToken {
            value: value.clone(),
            generation,
            refresh_at: refresh_deadline(Instant::now(), lifetime),
        });
        tracing::info!(
            valid_for_secs = lifetime.as_secs(),
            "obtained a platform token"
        );
        Ok((value, generation))
    }

    async fn cached_token(&self) -> Option<(SecretString, u64)> {
        usable(&*self.token.lock().await)
    }

    /// Forgets the token of `generation` unless another task already replaced it.
    async fn drop_token(&self, generation: u64) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|t| t.generation == generation) {
            *slot = None;
        }
    }

    async fn request_token(&self, slot: Reservation) -> Result<SecretString, FetchError> {
        let body = serde_json::json!({
            "merchantCode": self.merchant_code,
            "secret": self.secret.expose_secret(),
            "validitySecs": self.validity_secs,
            "operations": OPERATIONS,
        });
        let request = self
            .http
            .post(format!("{}/auth-tokens", self.base_url))
            .json(&body);
        let response = self.send(request, "auth-tokens", &mut Some(slot)).await?;
        if response.status() != StatusCode::OK {
            return Err(classify(response).await);
        }
        let answer: TokenAnswer = response
            .json()
            .await
            .map_err(|e| FetchError::InvalidBody(format!("token answer: {e}")))?;
        Ok(SecretString::from(answer.token))
    }

    /// Sends one request within the rate limit, with the version header.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        route: &'static str,
        slot: &mut Option<Reservation>,
    ) -> Result<Response, FetchError> {
        match slot.take() {
            Some(reservation) => reservation.commit().await,
            None => self.limiter.acquire().await,
        }
        let result = request.header("X-API-Version", API_VERSION).send().await;
        let status = result
            .as_ref()
            .map(|r| r.status().as_u16().to_string())
            .unwrap_or_else(|_| "error".into());
        metrics::counter!("paymirror_platform_requests_total", "route" => route, "status" => status)
            .increment(1);
        result.map_err(|e| FetchError::Transport(transport_reason(&e)))
    }
}

/// Returns the cached token and its generation unless it is due for refresh.
fn usable(cache: &Option<CachedToken>) -> Option<(SecretString, u64)> {
    let cached = cache.as_ref().filter(|t| Instant::now() < t.refresh_at)?;
    Some((cached.value.clone(), cached.generation))
}

async fn parse_payment(response: Response) -> Result<PlatformPayment, FetchError> {
    let body = response
        .bytes()
        .await
        .map_err(|e| FetchError::Transport(transport_reason(&e)))?;
    PlatformPayment::parse(&body).map_err(|e| FetchError::InvalidBody(e.to_string()))
}

/// Maps a non-200 answer to its error class.
async fn classify(response: Response) -> FetchError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let answer: ErrorAnswer = response.json().await.unwrap_or_default();
    let detail = answer.code.or(answer.description).unwrap_or_default();
    match status.as_u16() {
        401 => FetchError::Unauthorized,
        403 => FetchError::Forbidden(detail),
        406 => FetchError::MerchantRejected(detail),
        410 => FetchError::NotFound,
        429 => FetchError::Throttled { retry_after },
        s @ 500..=599 => FetchError::Server(s),
        s => FetchError::Unexpected(s),
    }
}

/// Describes a transport failure without its URL's query or anything secret.
fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else if e.is_body() || e.is_decode() {
        "the answer was cut off".into()
    } else {
        "request failed".into()
    }
}
