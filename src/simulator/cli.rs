//! `paymirror simulator`: the simulator as a long-running process.

use std::ffi::OsStr;
use std::fmt;
use std::time::Duration;

use anyhow::Context;
use clap::builder::{BoolishValueParser, TypedValueParser};
use clap::error::ErrorKind;

use super::{Faults, SimMerchant, Simulator, SimulatorConfig};

/// The `max_rps` of an extra merchant whose `--merchants` entry gives none.
const DEFAULT_MERCHANT_MAX_RPS: u32 = 10;

/// Flags of `paymirror simulator`; each can also come from a `SIMULATOR_*` variable.
#[derive(clap::Args, Clone)]
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
    /// Merchants besides the primary one, comma-separated, each CODE:SECRET or
    /// CODE:SECRET:MAX_RPS (MAX_RPS 10 if omitted); their callbacks go to
    /// {base}/callbacks/{CODE}/payins|payouts.
    // `std::vec::Vec`, not `Vec`: clap then takes the whole list as one value,
    // so an empty SIMULATOR_MERCHANTS means no merchant rather than one empty entry.
    #[arg(
        long,
        env = "SIMULATOR_MERCHANTS",
        hide_env_values = true,
        value_parser = MerchantListParser,
        default_value = "",
        hide_default_value = true,
        value_name = "CODE:SECRET[:MAX_RPS],..."
    )]
    pub merchants: std::vec::Vec<SimMerchant>,
    /// Pause between callback attempts (the platform: 120000).
    #[arg(
        long,
        env = "SIMULATOR_CALLBACK_RETRY_INTERVAL_MS",
        default_value_t = 120_000
    )]
    pub callback_retry_interval_ms: u64,
    /// How long a payin waits for money before it fails (the platform: 900000).
    #[arg(long, env = "SIMULATOR_PAYIN_EXPIRY_MS", default_value_t = 900_000)]
    pub payin_expiry_ms: u64,
    /// The faults at start (`PUT /_sim/faults` changes them while running).
    // Boxed: they would make `SimulatorArgs` dwarf the other commands' arguments.
    #[command(flatten)]
    pub faults: Box<FaultArgs>,
}

impl fmt::Debug for SimulatorArgs {
    /// Shows every flag but the secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorArgs")
            .field("listen", &self.listen)
            .field("merchant_code", &self.merchant_code)
            .field("secret", &"***")
            .field("callback_base_url", &self.callback_base_url)
            .field("max_rps", &self.max_rps)
            .field("merchants", &self.merchants)
            .field(
                "callback_retry_interval_ms",
                &self.callback_retry_interval_ms,
            )
            .field("payin_expiry_ms", &self.payin_expiry_ms)
            .field("faults", &self.faults)
            .finish()
    }
}

/// Parses the `--merchants` list: comma-separated entries, each `CODE:SECRET`
/// or `CODE:SECRET:MAX_RPS` (a secret may hold `:` only when MAX_RPS follows);
/// a blank list is no merchant. Its errors name an entry by position and code,
/// never by its text, which holds a secret.
#[derive(Clone, Copy)]
struct MerchantListParser;

impl TypedValueParser for MerchantListParser {
    type Value = Vec<SimMerchant>;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Vec<SimMerchant>, clap::Error> {
        let list = value
            .to_str()
            .ok_or_else(|| "the list is not UTF-8".to_owned());
        list.and_then(parse_merchants).map_err(|reason| {
            let message = format!("invalid --merchants (SIMULATOR_MERCHANTS): {reason}\n");
            clap::Error::raw(ErrorKind::ValueValidation, message).with_cmd(cmd)
        })
    }
}

/// Returns the merchants a `--merchants` list describes, or why it does not
/// describe them (a code repeated within the list included).
fn parse_merchants(list: &str) -> Result<Vec<SimMerchant>, String> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut merchants: Vec<SimMerchant> = Vec::new();
    for (index, entry) in list.split(',').enumerate() {
        let merchant = parse_merchant_entry(index + 1, entry)?;
        if let Some(first) = merchants.iter().position(|m| m.code == merchant.code) {
            return Err(format!(
                "entry {} ({:?}) repeats the code of entry {}",
                index + 1,
                merchant.code,
                first + 1
            ));
        }
        merchants.push(merchant);
    }
    Ok(merchants)
}

/// Returns the merchant entry `number` (from 1) describes, or why it does not
/// describe one.
fn parse_merchant_entry(number: usize, entry: &str) -> Result<SimMerchant, String> {
    const FORM: &str = "expected CODE:SECRET or CODE:SECRET:MAX_RPS";
    let entry = entry.trim();
    if entry.is_empty() {
        return Err(format!("entry {number} is empty ({FORM}, comma-separated)"));
    }
    let Some((code, rest)) = entry.split_once(':') else {
        return Err(format!("entry {number} ({entry:?}) has no secret ({FORM})"));
    };
    if code.is_empty() {
        return Err(format!("entry {number} has an empty code ({FORM})"));
    }
    let (secret, max_rps) = match rest.rsplit_once(':') {
        None => (rest, DEFAULT_MERCHANT_MAX_RPS),
        Some((secret, raw)) => match raw.trim().parse::<u32>() {
            Ok(max_rps) if max_rps > 0 => (secret, max_rps),
            _ => {
                return Err(format!(
                    "entry {number} ({code:?}): MAX_RPS must be a whole number above 0"
                ))
            }
        },
    };
    if secret.is_empty() {
        return Err(format!(
            "entry {number} ({code:?}) has an empty secret ({FORM})"
        ));
    }
    Ok(SimMerchant {
        code: code.to_owned(),
        secret: secret.to_owned(),
        max_rps,
    })
}

/// Fault flags of `paymirror simulator`; see [`Faults`] for what each does.
#[derive(clap::Args, Debug, Clone)]
pub struct FaultArgs {
    /// Extra delay before answering GET /payins|payouts/{id}.
    #[arg(long, env = "SIMULATOR_LATENCY_MS", default_value_t = 0)]
    pub latency_ms: u64,
    /// A further random 0..=N ms on top of --latency-ms.
    #[arg(long, env = "SIMULATOR_LATENCY_JITTER_MS", default_value_t = 0)]
    pub latency_jitter_ms: u64,
    /// Probability (0..=1) that an admitted platform request is answered 500.
    #[arg(long, env = "SIMULATOR_ERROR_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub error_rate: f64,
    /// Probability (0..=1) that an admitted platform request is answered 429 anyway.
    #[arg(long, env = "SIMULATOR_THROTTLE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub throttle_rate: f64,
    /// Every 429 carries Retry-After: N (by default none, as on the platform).
    #[arg(long, env = "SIMULATOR_RETRY_AFTER_SECS")]
    pub retry_after_secs: Option<u64>,
    /// Tokens expire at most N seconds after issue, whatever validitySecs asked.
    #[arg(long, env = "SIMULATOR_TOKEN_LIFETIME_CAP_SECS")]
    pub token_lifetime_cap_secs: Option<u64>,
    /// The platform's clock runs N seconds off ours (negative: behind) for tokens.
    #[arg(
        long,
        env = "SIMULATOR_TOKEN_CLOCK_SKEW_SECS",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub token_clock_skew_secs: i64,
    /// A payment answers 410 to fetches for N ms after its creation.
    #[arg(long, env = "SIMULATOR_INVISIBLE_FOR_MS", default_value_t = 0)]
    pub invisible_for_ms: u64,
    /// Probability (0..=1) that a callback is never sent.
    #[arg(long, env = "SIMULATOR_DROP_CALLBACK_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub drop_callback_rate: f64,
    /// Probability (0..=1) that a callback is sent twice.
    #[arg(long, env = "SIMULATOR_DUPLICATE_CALLBACK_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub duplicate_callback_rate: f64,
    /// Probability (0..=1) of an extra callback with an unknown event type.
    #[arg(long, env = "SIMULATOR_UNKNOWN_EVENT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub unknown_event_rate: f64,
    /// Each callback waits a random 0..=N ms first, so callbacks can arrive out of order.
    #[arg(long, env = "SIMULATOR_CALLBACK_DELAY_JITTER_MS", default_value_t = 0)]
    pub callback_delay_jitter_ms: u64,
    /// Probability (0..=1) that a 200 payment fetch carries a body that does not parse.
    #[arg(long, env = "SIMULATOR_MALFORMED_BODY_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub malformed_body_rate: f64,
    /// Answer every fetch and token request 406 MERCHANT_INACTIVE.
    #[arg(long, env = "SIMULATOR_MERCHANT_INACTIVE", value_parser = BoolishValueParser::new())]
    pub merchant_inactive: bool,
    /// Answer every fetch 403, as if the token lacked the operation.
    #[arg(long, env = "SIMULATOR_FORBID_OPERATIONS", value_parser = BoolishValueParser::new())]
    pub forbid_operations: bool,
    /// Answer every fetch 401, as if every token were invalid.
    #[arg(long, env = "SIMULATOR_REJECT_TOKENS", value_parser = BoolishValueParser::new())]
    pub reject_tokens: bool,
    /// Hold each new TCP connection N ms before reading requests from it.
    #[arg(long, env = "SIMULATOR_CONNECT_DELAY_MS", default_value_t = 0)]
    pub connect_delay_ms: u64,
    /// Probability (0..=1) that a 200 payment fetch names a different payment.
    #[arg(long, env = "SIMULATOR_WRONG_ID_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub wrong_id_rate: f64,
    /// The failureReasons.message of FAILED and REFUSED payments, verbatim.
    #[arg(long, env = "SIMULATOR_FAILURE_MESSAGE")]
    pub failure_message: Option<String>,
    /// Add a "padding" field of N bytes to every 200 payment fetch.
    #[arg(long, env = "SIMULATOR_BODY_PADDING_BYTES", default_value_t = 0)]
    pub body_padding_bytes: u64,
    /// Answer every payment fetch 302 Found with this Location.
    #[arg(long, env = "SIMULATOR_REDIRECT_TO")]
    pub redirect_to: Option<String>,
}

impl From<&FaultArgs> for Faults {
    /// Returns the faults the flags describe.
    fn from(args: &FaultArgs) -> Self {
        Faults {
            latency_ms: args.latency_ms,
            latency_jitter_ms: args.latency_jitter_ms,
            error_rate: args.error_rate,
            throttle_rate: args.throttle_rate,
            retry_after_secs: args.retry_after_secs,
            token_lifetime_cap_secs: args.token_lifetime_cap_secs,
            token_clock_skew_secs: args.token_clock_skew_secs,
            invisible_for_ms: args.invisible_for_ms,
            drop_callback_rate: args.drop_callback_rate,
            duplicate_callback_rate: args.duplicate_callback_rate,
            unknown_event_rate: args.unknown_event_rate,
            callback_delay_jitter_ms: args.callback_delay_jitter_ms,
            malformed_body_rate: args.malformed_body_rate,
            merchant_inactive: args.merchant_inactive,
            forbid_operations: args.forbid_operations,
            reject_tokens: args.reject_tokens,
            connect_delay_ms: args.connect_delay_ms,
            wrong_id_rate: args.wrong_id_rate,
            failure_message: args.failure_message.clone(),
            body_padding_bytes: args.body_padding_bytes,
            redirect_to: args.redirect_to.clone(),
        }
    }
}

impl From<&SimulatorArgs> for SimulatorConfig {
    /// Returns the configuration the flags describe.
    fn from(args: &SimulatorArgs) -> Self {
        SimulatorConfig {
            merchant_code: args.merchant_code.clone(),
            secret: args.secret.clone(),
            max_rps: args.max_rps,
            merchants: args.merchants.clone(),
            callback_base_url: args.callback_base_url.clone(),
            callback_retry_interval: Duration::from_millis(args.callback_retry_interval_ms),
            payin_expiry: Duration::from_millis(args.payin_expiry_ms),
            faults: Faults::from(args.faults.as_ref()),
        }
    }
}

/// Returns the configuration the flags describe, or what is wrong with them:
/// invalid fault flags, or extra merchants whose code repeats another's or
/// the primary merchant's.
fn config_of(args: &SimulatorArgs) -> anyhow::Result<SimulatorConfig> {
    let config = SimulatorConfig::from(args);
    config
        .faults
        .validate()
        .map_err(|reason| anyhow::anyhow!("invalid fault flags: {reason}"))?;
    config.validate_merchants().map_err(|reason| {
        anyhow::anyhow!(
            "invalid --merchants (SIMULATOR_MERCHANTS): {reason} \
             (the primary merchant is --merchant-code, SIMULATOR_MERCHANT_CODE)"
        )
    })?;
    Ok(config)
}

/// Runs the simulator from the CLI until Ctrl-C / SIGTERM.
pub async fn run(args: SimulatorArgs) -> anyhow::Result<()> {
    let config = config_of(&args)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (SIMULATOR_LISTEN)", args.listen))?;
    let simulator = Simulator::start(listener, config).await?;
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
        assert_eq!(config.payin_expiry, SimulatorConfig::default().payin_expiry);
        assert_eq!(config.faults, Faults::default());
        assert!(Cli::try_parse_from(["sim", "--error-rate", "1.5"]).is_err());
        assert!(Cli::try_parse_from(["sim", "--throttle-rate", "-0.1"]).is_err());
        assert!(Cli::try_parse_from(["sim", "--duplicate-callback-rate", "0.25"]).is_ok());
        assert!(Cli::try_parse_from(["sim", "--wrong-id-rate", "2"]).is_err());
    }

    #[test]
    fn merchants_are_parsed_with_their_own_secret_and_rate() {
        let cli = Cli::try_parse_from([
            "sim",
            "--secret=primary-secret",
            "--merchants",
            "M2:s2, M3:a:b:25,M4:s4:1 ",
        ])
        .unwrap();
        let config = config_of(&cli.args).unwrap();
        let merchant = |code: &str, secret: &str, max_rps| SimMerchant {
            code: code.into(),
            secret: secret.into(),
            max_rps,
        };
        assert_eq!(
            config.merchants,
            [
                merchant("M2", "s2", 10),
                merchant("M3", "a:b", 25),
                merchant("M4", "s4", 1)
            ]
        );
        let shown = format!("{:?} {config:?}", cli.args);
        assert!(shown.contains("M3") && shown.contains("***"), "{shown}");
        for secret in ["primary-secret", "s2", "a:b", "s4"] {
            assert!(!shown.contains(&format!("\"{secret}\"")), "{shown}");
        }
        for none in [
            &["sim"][..],
            &["sim", "--merchants="],
            &["sim", "--merchants", " "],
        ] {
            let cli = Cli::try_parse_from(none).unwrap();
            assert!(
                config_of(&cli.args).unwrap().merchants.is_empty(),
                "{none:?}"
            );
        }
    }

    #[test]
    fn invalid_merchant_entries_are_named_without_their_secret() {
        let cases = [
            ("M2:s2,,M3:s3", "entry 2 is empty"),
            ("M2:s2,", "entry 2 is empty"),
            (":hidden-1", "entry 1 has an empty code"),
            ("M2", "entry 1 (\"M2\") has no secret"),
            ("M2:", "entry 1 (\"M2\") has an empty secret"),
            ("M3:x,M2::5", "entry 2 (\"M2\") has an empty secret"),
            (
                "M2:hidden-2:0",
                "entry 1 (\"M2\"): MAX_RPS must be a whole number above 0",
            ),
            ("M2:hidden-3:ten", "entry 1 (\"M2\"): MAX_RPS must be"),
            ("M2:hidden-4:-1", "entry 1 (\"M2\"): MAX_RPS must be"),
            ("M2:hid:den-5", "entry 1 (\"M2\"): MAX_RPS must be"),
            (
                "M2:hidden-6,M3:x,M2:hidden-7",
                "entry 3 (\"M2\") repeats the code of entry 1",
            ),
        ];
        for (raw, expected) in cases {
            let error = Cli::try_parse_from(["sim", "--merchants", raw])
                .err()
                .unwrap_or_else(|| panic!("{raw} was accepted"))
                .to_string();
            assert!(error.contains(expected), "{raw}: {error}");
            assert!(error.contains("--merchants"), "{raw}: {error}");
            assert!(!error.contains("hid"), "{raw}: {error}");
        }
        let cli = Cli::try_parse_from(["sim", "--merchants", "M1:hidden-8"]).unwrap();
        let error = config_of(&cli.args).unwrap_err().to_string();
        let expected = "merchant M1 repeats the primary merchant's code";
        assert!(error.contains(expected), "{error}");
        assert!(
            error.contains("--merchants") && !error.contains("hidden"),
            "{error}"
        );
        let primary = Cli::try_parse_from(["sim", "--merchant-code=M7", "--merchants=M7:x"]);
        assert!(config_of(&primary.unwrap().args).is_err());
    }

    #[test]
    fn every_fault_has_a_flag() {
        let cli = Cli::try_parse_from([
            "sim",
            "--latency-ms=5",
            "--latency-jitter-ms=6",
            "--error-rate=0.1",
            "--throttle-rate=0.2",
            "--retry-after-secs=3",
            "--token-lifetime-cap-secs=90",
            "--token-clock-skew-secs=-7200",
            "--invisible-for-ms=700",
            "--drop-callback-rate=0.3",
            "--duplicate-callback-rate=0.4",
            "--unknown-event-rate=0.5",
            "--callback-delay-jitter-ms=800",
            "--malformed-body-rate=0.6",
            "--merchant-inactive",
            "--forbid-operations",
            "--reject-tokens",
            "--connect-delay-ms=900",
            "--wrong-id-rate=0.7",
            "--failure-message=no money",
            "--body-padding-bytes=1000",
            "--redirect-to=http://127.0.0.1:1/",
        ])
        .unwrap();
        let expected = Faults {
            latency_ms: 5,
            latency_jitter_ms: 6,
            error_rate: 0.1,
            throttle_rate: 0.2,
            retry_after_secs: Some(3),
            token_lifetime_cap_secs: Some(90),
            token_clock_skew_secs: -7200,
            invisible_for_ms: 700,
            drop_callback_rate: 0.3,
            duplicate_callback_rate: 0.4,
            unknown_event_rate: 0.5,
            callback_delay_jitter_ms: 800,
            malformed_body_rate: 0.6,
            merchant_inactive: true,
            forbid_operations: true,
            reject_tokens: true,
            connect_delay_ms: 900,
            wrong_id_rate: 0.7,
            failure_message: Some("no money".into()),
            body_padding_bytes: 1000,
            redirect_to: Some("http://127.0.0.1:1/".into()),
        };
        assert_eq!(SimulatorConfig::from(&cli.args).faults, expected);
    }
}
