use paymirror::demo::{self, DemoArgs};

use crate::helpers::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_mirrors_every_payment_and_reports_it() {
    let db = TestDatabase::create().await;
    let args = DemoArgs {
        payments: 20,
        database_url: db.url.to_string(),
        timeout_secs: 60,
        finalize_within_secs: 3,
    };

    let report = demo::run(args).await.expect("the demo runs");

    assert_eq!(report.payments(), 20, "{report}");
    assert!(report.all_match(), "{report}");
    assert_eq!(report.comparison.matching, 20, "{report}");
    assert_eq!(report.comparison.final_in_simulator, 20, "{report}");
    assert!(!report.timed_out, "{report}");
    assert!(report.callbacks_received >= 20, "{report}");
    assert!(report.simulator.requests >= 21, "{report}");
    assert!(report.last_callback_to_consistent.is_some(), "{report}");
    assert_eq!(report.by_status.values().sum::<usize>(), 20, "{report}");
}
