//! The demo's sample traffic: a plan of payins and payouts, each with the final
//! status the simulator will move it to.

use std::time::Duration;

use rand::distr::Alphanumeric;
use rand::Rng;
use rust_decimal::Decimal;

use crate::domain::{PaymentId, PaymentKind};
use crate::simulator::NewPayment;

/// Currencies and the payment method the demo uses with each.
const CURRENCIES: [(&str, &str); 3] = [("INR", "UPIQR"), ("IDR", "QRIS"), ("BRL", "PIX")];

/// Returns a run prefix such as `Dx7Qa2k`: `D` and 6 random letters or digits,
/// so that runs sharing a database only ever look at their own payments.
pub fn run_prefix() -> String {
    let suffix: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(6)
        .map(char::from)
        .collect();
    format!("D{suffix}")
}

/// Returns `count` payments with ids `{prefix}-{n}`: 60 % payins, 40 % payouts,
/// 2-decimal amounts in INR, IDR or BRL, and final statuses SUCCESS 70 %,
/// FAILED 20 %, REFUSED 10 %, reached after 1 s to `finalize_within`.
pub fn plan_payments(
    prefix: &str,
    count: usize,
    finalize_within: Duration,
) -> anyhow::Result<Vec<NewPayment>> {
    let mut rng = rand::rng();
    let max_ms = finalize_within.as_millis().max(1000) as u64;
    (1..=count)
        .map(|n| {
            let kind = if rng.random_bool(0.6) {
                PaymentKind::Payin
            } else {
                PaymentKind::Payout
            };
            let (currency, method) = CURRENCIES[rng.random_range(0..CURRENCIES.len())];
            let final_status = match rng.random_range(0..100) {
                0..70 => "SUCCESS",
                70..90 => "FAILED",
                _ => "REFUSED",
            };
            Ok(NewPayment {
                kind,
                id: PaymentId::parse(&format!("{prefix}-{n}"))?,
                amount: Decimal::new(rng.random_range(100..=2_500_000), 2),
                currency: currency.into(),
                payment_method_code: method.into(),
                final_status: Some(final_status.into()),
                finalize_after: Duration::from_millis(rng.random_range(1000..=max_ms)),
                callback_url: None,
                is_test: true,
                expire_after: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_valid_distinct_ids_with_two_decimal_amounts() {
        let prefix = run_prefix();
        let plan = plan_payments(&prefix, 50, Duration::from_secs(3)).expect("plan");
        assert_eq!(plan.len(), 50);
        assert_eq!(plan[49].id.as_str(), format!("{prefix}-50"));
        assert!(plan.iter().all(|p| p.amount.scale() == 2));
        assert!(plan
            .iter()
            .all(|p| (1..=3).contains(&p.finalize_after.as_secs())));
    }
}
