//! The platform client: one per merchant, sending every request within the shared rate
//! limit and the outage breaker, and classifying every answer the platform can give.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{header, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::breaker::{Admission, Breaker};
use super::business::{printable, BusinessErrors};
use super::document::PlatformPayment;
use super::fields::InvalidAnswer;
use super::limiter::{RateLimiter, Reservation};
use super::token::{lifetime_from_claims, refresh_deadline, CachedToken};
use crate::config::PlatformSettings;
use crate::domain::{PaymentId, PaymentKind};
use crate::ops::Tally;

/// The platform's API major version, sent on every request.
const API_VERSION: &str = "2";
/// Least privilege: read operations only.
const OPERATIONS: [&str; 2] = ["GET /payins/.*", "GET /payouts/.*"];
/// The largest platform answer read; a larger one is a failed attempt.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// The longest any pause lasts, whatever `Retry-After` or the configuration says.
pub const MAX_PAUSE: Duration = Duration::from_secs(60);
/// How a platform call failed; the worker chooses retry, pause or `dead` from this.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the platform rejected our token (401)")]
    Unauthorized,
    #[error("the platform refused the operation (403): {0}")]
    Forbidden(String),
    #[error("the platform refused the merchant's request (406 {0})")]
    MerchantRejected(BusinessErrors),
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
    #[error("the platform's answer has a field paymirror cannot take: {0}")]
    InvalidField(String),
    #[error("the platform answered about another payment ({0})")]
    AnotherPayment(String),
}

impl FetchError {
    /// Returns whether the platform itself failed (5xx, timeout, connection refused),
    /// as opposed to answering about this payment or our credentials.
    pub fn is_platform_failure(&self) -> bool {
        matches!(self, FetchError::Server(_) | FetchError::Transport(_))
    }
}

/// Talks to the platform on behalf of one merchant. Every request it sends goes
/// through the shared [`RateLimiter`] first, token requests included, and through
/// the outage [`Breaker`].
///
/// Callers take a [`Slot`] with [`reserve`](Self::reserve) before choosing what to
/// fetch, then [`fetch`](Self::fetch) with it: the most urgent job at the moment a
/// slot frees is the one sent.
pub struct PlatformClient {
    http: reqwest::Client,
    base_url: String,
    /// The merchant code: sent for tokens, and the `merchant` label of metrics.
    merchant: Arc<str>,
    secret: SecretString,
    /// How long a token is asked to live (`validitySecs`).
    validity: Duration,
    limiter: Arc<RateLimiter>,
    breaker: Arc<Breaker>,
    /// At most one reserved slot waits unsent, so a fresh urgent job never queues behind many.
    unsent: Arc<Semaphore>,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    generations: AtomicU64,
    /// Requests and 429s per minute, for the console's charts.
    tally: Tally,
}

/// Leave to send one fetch: a rate-limit slot, and the breaker's admission.
#[derive(Debug)]
pub struct Slot {
    admission: Admission,
    reservation: Reservation,
}

impl Slot {
    /// Returns whether this fetch probes a platform in outage.
    pub fn is_probe(&self) -> bool {
        self.admission.is_probe()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
}

/// The platform's `BasicError`: every error answer but 406.
#[derive(Deserialize, Default)]
struct ErrorAnswer {
    description: Option<String>,
}

impl PlatformClient {
    pub fn new(settings: &PlatformSettings, limiter: Arc<RateLimiter>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            // A redirect is an answer we did not ask for: never follow it elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("paymirror/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(PlatformClient {
            http,
            base_url: settings.base_url.trim_end_matches('/').to_owned(),
            merchant: settings.merchant_code.as_str().into(),
            secret: settings.secret.clone(),
            validity: settings.token_validity,
            limiter,
            breaker: Arc::new(Breaker::new(
                settings.merchant_code.as_str().into(),
                settings.outage_after_failures,
                settings.probe_interval,
            )),
            unsent: Arc::new(Semaphore::new(1)),
            token: tokio::sync::Mutex::new(None),
            generations: AtomicU64::new(0),
            tally: Tally::default(),
        })
    }

    /// Returns this client counting every request it sends into `tally`.
    pub fn counting_into(self, tally: Tally) -> Self {
        PlatformClient { tally, ..self }
    }

    /// Waits until a fetch may be sent (the rate limit, and during an outage the
    /// next probe's turn) and returns its slot. Dropping it unused gives it back.
    pub async fn reserve(&self) -> Slot {
        let admission = self.breaker.admit().await;
        let gate = self.unsent.clone().acquire_owned().await;
        let reservation = self.limiter.reserve().await;
        Slot {
            admission,
            reservation: match gate {
                Ok(gate) => reservation.holding(gate),
                Err(_) => reservation,
            },
        }
    }

    /// Stops every fetch of every replica for `for_at_least`, at most [`MAX_PAUSE`].
    pub async fn pause(&self, for_at_least: Duration) {
        self.limiter.pause(for_at_least.min(MAX_PAUSE)).await;
    }

    /// Returns whether the platform is failing every request (an outage).
    pub fn in_outage(&self) -> bool {
        self.breaker.is_open()
    }

    /// Reserves a slot and fetches: [`reserve`](Self::reserve) then [`fetch`](Self::fetch).
    pub async fn fetch_payment(
        &self,
        kind: PaymentKind,
        id: &PaymentId,
    ) -> Result<PlatformPayment, FetchError> {
        let slot = self.reserve().await;
        self.fetch(slot, kind, id).await
    }

    /// Fetches the authoritative state of a payment with `slot`. A 401 triggers one
    /// token refresh and one retry; every other failure is returned classified.
    pub async fn fetch(
        &self,
        slot: Slot,
        kind: PaymentKind,
        id: &PaymentId,
    ) -> Result<PlatformPayment, FetchError> {
        let Slot {
            admission,
            reservation,
        } = slot;
        let mut slot = Some(reservation);
        // `PaymentId` admits only [A-Za-z0-9_-]: safe in a path as is.
        let url = format!("{}/{}/{}", self.base_url, kind.plural(), id);
        let mut refreshed = false;
        let result = loop {
            let (token, generation) = match self.current_token(&mut slot).await {
                Ok(valid) => valid,
                Err(e) => break Err(e),
            };
            let request = self.http.get(&url).bearer_auth(token.expose_secret());
            let response = match self.send(request, kind.plural(), &mut slot).await {
                Ok(response) => response,
                Err(e) => break Err(e),
            };
            match response.status() {
                StatusCode::OK => break parse_payment(response, kind, id).await,
                StatusCode::UNAUTHORIZED if !refreshed => {
                    self.drop_token(generation).await;
                    refreshed = true;
                }
                _ => break Err(classify(response).await),
            }
        };
        drop(admission);
        result
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
        let lifetime = lifetime_from_claims(&value, self.validity);
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
            "merchantCode": &*self.merchant,
            "secret": self.secret.expose_secret(),
            "validitySecs": self.validity.as_secs(),
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
        let body = read_capped(response).await?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
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
        let sent = match slot.take() {
            Some(reservation) => reservation.commit().await,
            None => self.limiter.acquire().await,
        };
        let started = Instant::now();
        let result = request.header("X-API-Version", API_VERSION).send().await;
        metrics::histogram!("paymirror_platform_request_duration_seconds", "merchant" => self.merchant.clone(), "route" => route)
            .record(started.elapsed().as_secs_f64());
        // The answer arrived: the request counts one window more from now.
        drop(sent);
        let platform_failed = match &result {
            Ok(response) => response.status().is_server_error(),
            Err(_) => true,
        };
        self.breaker.record(!platform_failed);
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        self.tally.platform_request(&self.merchant, route, status);
        result.map_err(|e| FetchError::Transport(transport_reason(&e)))
    }
}

/// Returns the cached token and its generation unless it is due for refresh.
fn usable(cache: &Option<CachedToken>) -> Option<(SecretString, u64)> {
    let cached = cache.as_ref().filter(|t| Instant::now() < t.refresh_at)?;
    Some((cached.value.clone(), cached.generation))
}

async fn parse_payment(
    response: Response,
    kind: PaymentKind,
    id: &PaymentId,
) -> Result<PlatformPayment, FetchError> {
    let body = read_capped(response).await?;
    PlatformPayment::parse(&body, kind, id).map_err(|e| match e {
        InvalidAnswer::Json(_) | InvalidAnswer::NoStatus => FetchError::InvalidBody(e.to_string()),
        InvalidAnswer::Field { .. } => FetchError::InvalidField(e.to_string()),
        InvalidAnswer::AnotherPayment { .. } => FetchError::AnotherPayment(e.to_string()),
    })
}

/// Reads an answer's body, refusing one over [`MAX_ANSWER_BYTES`] without reading it all.
async fn read_capped(mut response: Response) -> Result<Vec<u8>, FetchError> {
    let too_large =
        || FetchError::InvalidBody(format!("the answer exceeds {MAX_ANSWER_BYTES} bytes"));
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::Transport(transport_reason(&e)))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Maps a non-200 answer to its error class.
async fn classify(response: Response) -> FetchError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| Duration::from_secs(secs).min(MAX_PAUSE));
    let body = read_capped(response).await.unwrap_or_default();
    let description = || {
        let answer: ErrorAnswer = serde_json::from_slice(&body).unwrap_or_default();
        printable(&answer.description.unwrap_or_default(), 200)
    };
    match status.as_u16() {
        401 => FetchError::Unauthorized,
        403 => FetchError::Forbidden(description()),
        406 => FetchError::MerchantRejected(BusinessErrors::parse(&body)),
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
