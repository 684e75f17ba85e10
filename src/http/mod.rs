//! What every HTTP edge (callbacks, `/v1`, the console) shares: the state handlers
//! reach ([`AppState`]), the one error body and the extractors that answer with it,
//! query parameters, the payment document, the server that accepts and drains
//! connections, how many callbacks are admitted at once, what each request leaves behind (request id, access log, metrics),
//! and the probes (`/healthz`, `/readyz`, `/metrics`).

pub mod admission;
pub mod body;
pub mod document;
pub mod error;
pub mod params;
pub mod probes;
pub mod requests;
pub mod server;
pub mod stall;
mod state;

pub use document::PaymentDocument;
pub use error::{error_response, render_foreign_errors, ApiError, ErrorAnswers, ErrorBody};
pub use state::{AppParts, AppState, ConsoleState, MerchantPlatform};
