//! End-to-end tests of the simulator over real HTTP on 127.0.0.1:0.

mod admin;
mod answer_faults;
mod callbacks;
mod document;
mod faults;
mod merchants;
mod platform;
mod schema;
mod spec;

use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;

use super::{Faults, NewPayment, Simulator, SimulatorConfig};
use crate::domain::{PaymentId, PaymentKind};

/// How long any awaited condition may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// Returns a simulator serving on a fresh local port.
async fn start(config: SimulatorConfig) -> Simulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Simulator::start(listener, config).await.unwrap()
}

/// Returns an HTTP client that talks to local servers directly.
fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Returns a PROCESSING payment of `kind` that stays PROCESSING.
fn new_payment(kind: PaymentKind, id: &str, amount: &str) -> NewPayment {
    NewPayment::processing(
        kind,
        PaymentId::parse(id).unwrap(),
        Decimal::from_str(amount).unwrap(),
    )
}

/// Returns the id as a `PaymentId`.
fn id(raw: &str) -> PaymentId {
    PaymentId::parse(raw).unwrap()
}
