//! Callbacks: delivered on creation and status changes, retried after a
//! non-200, given up after five attempts, and the injectable faults.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use tokio::sync::mpsc;

use super::*;

/// A callback the receiver got: the URL's kind segment and the JSON body.
type Received = (String, Value);

/// What the receiver does: answers 500 to the first `fail_first` payin
/// callbacks, always 503 to payout callbacks, and reports every body.
#[derive(Clone)]
struct Receiver {
    fail_first: usize,
    seen_payins: Arc<AtomicUsize>,
    got: mpsc::UnboundedSender<Received>,
}

/// Returns the receiver's answer to `POST /callbacks/{kind}`.
async fn receive(
    State(rx): State<Receiver>,
    Path(kind): Path<String>,
    Json(body): Json<Value>,
) -> StatusCode {
    let _ = rx.got.send((kind.clone(), body));
    if kind == "payouts" {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let nth = rx.seen_payins.fetch_add(1, Ordering::SeqCst);
    if nth < rx.fail_first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

/// Starts a receiver; returns its base URL and the stream of callbacks it gets.
async fn start_receiver(fail_first: usize) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (got, seen) = mpsc::unbounded_channel();
    let receiver = Receiver {
        fail_first,
        seen_payins: Arc::default(),
        got,
    };
    let app = Router::new()
        .route("/callbacks/{kind}", post(receive))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Returns the next callback the receiver got, failing the test after [`PATIENCE`].
async fn next(seen: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(PATIENCE, seen.recv())
        .await
        .unwrap()
        .unwrap()
}

/// Returns a config sending callbacks to `url`, retrying every 50 ms.
fn config_for(url: String) -> SimulatorConfig {
    SimulatorConfig {
        callback_base_url: Some(url),
        callback_retry_interval: Duration::from_millis(50),
        ..SimulatorConfig::default()
    }
}

#[tokio::test]
async fn callbacks_are_retried_after_a_non_200_and_sent_on_every_change() {
    let (url, mut seen) = start_receiver(1).await;
    let sim = start(config_for(url)).await;
    sim.create_payment(new_payment(PaymentKind::Payin, "TST-2", "10.00"))
        .await;

    let first = next(&mut seen).await;
    assert_eq!(first.0, "payins");
    assert_eq!(
        first.1,
        serde_json::json!({"idEntity": "TST-2", "event": "payment.statusChange"})
    );
    assert_eq!(
        next(&mut seen).await,
        first,
        "the 500 is followed by a retry"
    );
    sim.wait_until(PATIENCE, |s| s.stats().callbacks_delivered == 1)
        .await
        .unwrap();
    assert_eq!(sim.stats().callbacks_sent, 2);

    assert!(
        sim.set_status(PaymentKind::Payin, &id("TST-2"), "SUCCESS")
            .await
    );
    assert!(
        !sim.set_status(PaymentKind::Payout, &id("TST-2"), "SUCCESS")
            .await
    );
    assert_eq!(next(&mut seen).await, first);
    sim.wait_until(PATIENCE, |s| s.stats().callbacks_delivered == 2)
        .await
        .unwrap();
    let stats = sim.stats();
    assert_eq!((stats.callbacks_sent, stats.callbacks_given_up), (3, 0));
    assert!(stats.last_callback_sent_at.is_some());
}

#[tokio::test]
async fn callbacks_are_given_up_after_five_attempts() {
    let (url, mut seen) = start_receiver(0).await;
    let sim = start(config_for(url)).await;
    sim.create_payment(new_payment(PaymentKind::Payout, "PO-9", "1"))
        .await;
    for _ in 0..5 {
        assert_eq!(next(&mut seen).await.0, "payouts");
    }
    sim.wait_until(PATIENCE, |s| s.stats().callbacks_given_up == 1)
        .await
        .unwrap();
    let stats = sim.stats();
    assert_eq!((stats.callbacks_sent, stats.callbacks_delivered), (5, 0));
}

#[tokio::test]
async fn payments_finalise_on_schedule_with_injected_duplicates_and_unknown_events() {
    let (url, mut seen) = start_receiver(0).await;
    let sim = start(SimulatorConfig {
        faults: Faults {
            duplicate_callback_rate: 1.0,
            unknown_event_rate: 1.0,
            ..Faults::default()
        },
        ..config_for(url)
    })
    .await;
    let mut payment = new_payment(PaymentKind::Payin, "TST-3", "5");
    payment.final_status = Some("FAILED".into());
    payment.finalize_after = Duration::from_millis(20);
    sim.create_payment(payment).await;

    let target = (PaymentKind::Payin, id("TST-3"));
    sim.wait_until(PATIENCE, |s| {
        s.payment_status(target.0, &target.1).as_deref() == Some("FAILED")
    })
    .await
    .unwrap();
    // Creation and finalisation each send two status changes and one unknown event.
    let mut events = Vec::new();
    for _ in 0..6 {
        events.push(
            next(&mut seen).await.1["event"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    events.sort();
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "payment.statusChange")
            .count(),
        4,
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| *e == "payment.noteAdded").count(),
        2,
        "{events:?}"
    );
    sim.wait_until(PATIENCE, |s| s.stats().callbacks_delivered == 6)
        .await
        .unwrap();
    assert_eq!(
        sim.payments(),
        vec![(target.0, target.1.clone(), "FAILED".to_owned())]
    );
}

#[tokio::test]
async fn wait_until_times_out_when_the_condition_never_holds() {
    let sim = start(SimulatorConfig::default()).await;
    let outcome = sim
        .wait_until(Duration::from_millis(50), |s| s.stats().requests > 0)
        .await;
    assert!(outcome.is_err());
}

#[tokio::test]
async fn dropped_callbacks_are_counted_and_never_sent() {
    let (url, mut seen) = start_receiver(0).await;
    let sim = start(config_for(url)).await;
    sim.set_faults(Faults {
        drop_callback_rate: 1.0,
        ..Faults::default()
    });
    sim.create_payment(new_payment(PaymentKind::Payin, "DR-1", "1"))
        .await;
    sim.wait_until(PATIENCE, |s| s.stats().callbacks_dropped == 1)
        .await
        .unwrap();
    sim.set_faults(Faults::default());
    assert!(
        sim.set_status(PaymentKind::Payin, &id("DR-1"), "SUCCESS")
            .await
    );
    // The only callback that arrives is the one sent after the fault was lifted.
    assert_eq!(next(&mut seen).await.1["idEntity"], "DR-1");
    sim.wait_until(PATIENCE, |s| s.stats().callbacks_delivered == 1)
        .await
        .unwrap();
    assert_eq!(sim.stats().callbacks_sent, 1);
}

#[tokio::test]
async fn callback_delay_jitter_spreads_and_reorders_deliveries() {
    let (url, mut seen) = start_receiver(0).await;
    let sim = start(config_for(url)).await;
    sim.set_faults(Faults {
        callback_delay_jitter_ms: 1000,
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    let created: Vec<String> = (0..20).map(|n| format!("RO-{n:02}")).collect();
    for raw in &created {
        sim.create_payment(new_payment(PaymentKind::Payin, raw, "1"))
            .await;
    }
    let mut arrived = Vec::new();
    for _ in 0..created.len() {
        let body = next(&mut seen).await.1;
        arrived.push(body["idEntity"].as_str().unwrap().to_owned());
    }
    // Twenty delays drawn from 0..=1000 ms: all below 300 ms, or all in
    // creation order, would mean the jitter was not applied.
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_ne!(arrived, created, "callbacks arrived in creation order");
    arrived.sort();
    assert_eq!(arrived, created, "every callback arrives exactly once");
}
