//! `paymirror simulator`: the simulator as a long-running process.

use std::time::Duration;

use anyhow::Context;

use super::{Simulator, SimulatorConfig};

/// Flags of `paymirror simulator`; each can also come from a `SIMULATOR_*` variable.
#[derive(clap::Args, Debug, Clone)]
pub struct SimulatorArgs {
    /// Address to listen on.
    #[arg(long, env = "SIMULATOR_LISTEN", default_value = "127.0.0.1:8090")]
    pub listen: String,
    /// Merchant code accepted by POST /auth-tokens.
    #[arg(long, env = "SIMULATOR_MERCHANT_CODE", default_value = "M1")]
    pub merchant_code: String,
    /// Merchant secret accepted by POST /auth-tokens.
    #[arg(
        long,
        env = "SIMULATOR_SECRET",
        default_value = "sim-secret",
        hide_env_values = true
    )]
    pub secret: String,
    /// Callbacks go to {base}/callbacks/payins|payouts unless a payment has its own URL.
    #[arg(long, env = "SIMULATOR_CALLBACK_BASE_URL")]
    pub callback_base_url: Option<String>,
    /// Accepted requests per sliding second; more are answered 429.
    #[arg(long, env = "SIMULATOR_MAX_RPS", default_value_t = 10)]
    pub max_rps: u32,
    /// Extra delay before answering GET /payins|payouts/{id}.
    #[arg(long, env = "SIMULATOR_LATENCY_MS", default_value_t = 0)]
    pub latency_ms: u64,
    /// Probability (0..=1) that a callback is sent twice.
    #[arg(long, env = "SIMULATOR_DUPLICATE_CALLBACK_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub duplicate_callback_rate: f64,
    /// Probability (0..=1) of an extra callback with an unknown event type.
    #[arg(long, env = "SIMULATOR_UNKNOWN_EVENT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub unknown_event_rate: f64,
    /// Probability (0..=1) that a callback is never sent.
    #[arg(long, env = "SIMULATOR_DROP_CALLBACK_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub drop_callback_rate: f64,
    /// Probability (0..=1) that a platform request is answered 500.
    #[arg(long, env = "SIMULATOR_ERROR_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub error_rate: f64,
    /// Pause between callback attempts (the platform: 120000).
    #[arg(
        long,
        env = "SIMULATOR_CALLBACK_RETRY_INTERVAL_MS",
        default_value_t = 120_000
    )]
    pub callback_retry_interval_ms: u64,
}

impl From<&SimulatorArgs> for SimulatorConfig {
    /// Returns the configuration the flags describe.
    fn from(args: &SimulatorArgs) -> Self {
        SimulatorConfig {
            merchant_code: args.merchant_code.clone(),
            secret: args.secret.clone(),
            max_rps: args.max_rps,
            callback_base_url: args.callback_base_url.clone(),
            callback_retry_interval: Duration::from_millis(args.callback_retry_interval_ms),
            latency: Duration::from_millis(args.latency_ms),
            duplicate_callback_rate: args.duplicate_callback_rate,
            unknown_event_rate: args.unknown_event_rate,
            drop_callback_rate: args.drop_callback_rate,
            error_rate: args.error_rate,
        }
    }
}

/// Runs the simulator from the CLI until Ctrl-C / SIGTERM.
pub async fn run(args: SimulatorArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (SIMULATOR_LISTEN)", args.listen))?;
    let simulator = Simulator::start(listener, SimulatorConfig::from(&args)).await?;
    tracing::info!(url = %simulator.base_url(), "simulator listening");
    crate::telemetry::shutdown_signal().await;
    tracing::info!("simulator stopping");
    simulator.shutdown();
    simulator.stopped().await;
    Ok(())
}

/// Returns `raw` as a probability, or why it is not one.
fn parse_rate(raw: &str) -> Result<f64, String> {
    let rate: f64 = raw
        .parse()
        .map_err(|_| format!("`{raw}` is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("`{raw}` is not within 0..=1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulatorArgs,
    }

    #[test]
    fn defaults_match_the_platform_and_rates_are_checked() {
        let cli = Cli::try_parse_from(["sim"]).unwrap();
        let config = SimulatorConfig::from(&cli.args);
        assert_eq!((config.max_rps, config.merchant_code.as_str()), (10, "M1"));
        assert_eq!(config.callback_retry_interval, Duration::from_secs(120));
        assert!(Cli::try_parse_from(["sim", "--error-rate", "1.5"]).is_err());
        assert!(Cli::try_parse_from(["sim", "--duplicate-callback-rate", "0.25"]).is_ok());
    }
}
