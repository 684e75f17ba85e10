//! The `paymirror` command line (SPEC §4).

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::app::Application;
use crate::config::{LogSettings, Settings};
use crate::demo::{self, DemoArgs};
use crate::migrations::migrate;
use crate::platform::{self, WINDOW};
use crate::queue::{self, DeadSync};
use crate::simulator::{self, SimulatorArgs};
use crate::telemetry;
use crate::tokens::{self, Permission, TokenInfo};

#[derive(Parser, Debug)]
#[command(
    name = "paymirror",
    version,
    about = "Mirror of payment statuses fed by anemic platform callbacks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve HTTP and run the sync workers (migrates first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Exit 0 if the local server answers /healthz (the container health check; no curl needed).
    Healthcheck {
        /// URL to probe; defaults to /healthz on the port of PAYMIRROR__SERVER__LISTEN.
        #[arg(long)]
        url: Option<String>,
    },
    /// Manage API tokens for /v1.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Inspect and retry syncs that gave up.
    #[command(subcommand)]
    Syncs(SyncsCommand),
    /// See or clear the pause that holds every replica's platform requests.
    #[command(subcommand)]
    Platform(PlatformCommand),
    /// Serve a stand-in of the payment platform (tokens, throttle, callbacks, faults).
    Simulator(SimulatorArgs),
    /// Run the simulator, paymirror and sample traffic on this machine, then print a summary
    /// (exit code 0 only if every stored status equals the simulator's).
    Demo(DemoArgs),
}

#[derive(Subcommand, Debug)]
pub enum SyncsCommand {
    /// List dead syncs (oldest death first).
    Dead {
        /// Only those that died at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        /// Print a JSON array of objects (camelCase fields) instead of a table.
        #[arg(long)]
        json: bool,
        /// The merchant code (default: the default merchant, platform.merchant_code).
        #[arg(long)]
        merchant: Option<String>,
    },
    /// Make dead syncs pending again with fresh attempts.
    Retry {
        /// Only those that died at or after this RFC 3339 time (default: all).
        #[arg(long)]
        since: Option<String>,
        /// The merchant code (default: the default merchant, platform.merchant_code).
        #[arg(long)]
        merchant: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PlatformCommand {
    /// Show whether platform requests are paused (after a 429, 403 or 406) and how
    /// many requests the shared window counts now.
    Status {
        /// The merchant code (default: the default merchant, platform.merchant_code).
        #[arg(long)]
        merchant: Option<String>,
    },
    /// End the pause at once: every replica resumes platform requests within a second.
    Resume {
        /// The merchant code (default: the default merchant, platform.merchant_code).
        #[arg(long)]
        merchant: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokensCommand {
    /// Create a token for an account (deactivating its earlier ones) and print it.
    Create {
        #[arg(long)]
        account: String,
        /// read (GET) or write (GET and POST); repeatable; default read.
        #[arg(long = "permission", value_enum)]
        permissions: Vec<Permission>,
        /// A merchant code the token may see; repeatable; default every merchant.
        #[arg(long = "merchant")]
        merchants: Vec<String>,
    },
    /// Deactivate the account's token for good.
    Revoke {
        #[arg(long)]
        account: String,
    },
    /// Show accounts, permissions, creation, last use and use count (never a token).
    List {
        /// Print a JSON array of objects (camelCase fields) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => serve().await,
        Command::Migrate => {
            let settings = load()?;
            migrate(&settings.database).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Healthcheck { url } => healthcheck(url).await,
        Command::Tokens(command) => run_tokens(command).await,
        Command::Syncs(command) => run_syncs(command).await,
        Command::Platform(command) => run_platform(command).await,
        Command::Simulator(args) => {
            telemetry::init(&LogSettings {
                format: "text".into(),
                level: "info".into(),
            });
            simulator::run(args).await
        }
        Command::Demo(args) => run_demo(args).await,
    }
}

fn load() -> anyhow::Result<Settings> {
    let settings = Settings::load()?;
    telemetry::init(&settings.log);
    Ok(settings)
}

async fn serve() -> anyhow::Result<()> {
    let settings = load()?;
    let app = Application::build(settings).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            telemetry::shutdown_signal().await;
            shutdown.cancel();
        }
    });
    app.run_until_stopped(shutdown).await
}

/// Probes the local server; used by the Docker HEALTHCHECK.
async fn healthcheck(url: Option<String>) -> anyhow::Result<()> {
    let url = url.unwrap_or_else(|| {
        let listen =
            std::env::var("PAYMIRROR__SERVER__LISTEN").unwrap_or_else(|_| "0.0.0.0:8080".into());
        let port = listen.rsplit(':').next().unwrap_or("8080").to_owned();
        format!("http://127.0.0.1:{port}/healthz")
    });
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()?;
    let status = client.get(&url).send().await?.status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    Ok(())
}

async fn run_demo(args: DemoArgs) -> anyhow::Result<()> {
    // Only warnings and errors, so progress and summary stay readable (RUST_LOG overrides).
    telemetry::init(&LogSettings {
        format: "text".into(),
        level: "warn".into(),
    });
    let report = tokio::select! {
        report = demo::run(args) => report?,
        _ = telemetry::shutdown_signal() => anyhow::bail!("demo interrupted"),
    };
    println!("{report}");
    if !report.all_match() {
        anyhow::bail!(
            "{} of {} planned payments are not stored as the simulator has them",
            report.planned - report.comparison.matching,
            report.planned
        );
    }
    Ok(())
}

/// The merchant code a command is about: `named` if this deployment is configured to
/// serve it, else the default merchant (`platform.merchant_code`).
fn configured_merchant(settings: &Settings, named: Option<&str>) -> anyhow::Result<String> {
    let default = settings.platform.merchant_code.as_str();
    anyhow::ensure!(
        !default.is_empty(),
        "invalid configuration key platform.merchant_code (PAYMIRROR__PLATFORM__MERCHANT_CODE): is not set"
    );
    let Some(named) = named else {
        return Ok(default.to_owned());
    };
    let configured = named == default || settings.merchants.iter().any(|m| m.code == named);
    anyhow::ensure!(
        configured,
        "merchant {named:?} is not configured here (platform.merchant_code or a [[merchants]] entry)"
    );
    Ok(named.to_owned())
}

async fn run_syncs(command: SyncsCommand) -> anyhow::Result<()> {
    let settings = load()?;
    let merchant = configured_merchant(
        &settings,
        match &command {
            SyncsCommand::Dead { merchant, .. } | SyncsCommand::Retry { merchant, .. } => {
                merchant.as_deref()
            }
        },
    )?;
    let merchant = merchant.as_str();
    migrate(&settings.database).await?;
    let pool = settings.database.pool()?;
    let since = |raw: Option<String>| {
        crate::http::params::parse_time(raw.as_deref(), "--since").map_err(anyhow::Error::from)
    };
    match command {
        SyncsCommand::Dead {
            since: raw,
            limit,
            json,
            ..
        } => {
            let dead = queue::list_dead_syncs(&pool, merchant, since(raw)?, limit).await?;
            if json {
                print_json(&dead)?;
            } else {
                print_dead_syncs(&dead);
            }
            eprintln!("{} dead sync(s)", dead.len());
        }
        SyncsCommand::Retry { since: raw, .. } => {
            let retried = queue::retry_dead_syncs(&pool, merchant, since(raw)?).await?;
            println!("{retried}");
            eprintln!("{retried} dead sync(s) scheduled again");
        }
    }
    Ok(())
}

async fn run_platform(command: PlatformCommand) -> anyhow::Result<()> {
    let settings = load()?;
    migrate(&settings.database).await?;
    let pool = settings.database.pool()?;
    let merchant = configured_merchant(
        &settings,
        match &command {
            PlatformCommand::Status { merchant } | PlatformCommand::Resume { merchant } => {
                merchant.as_deref()
            }
        },
    )?;
    let merchant = merchant.as_str();
    match command {
        PlatformCommand::Status { .. } => {
            match platform::budget_state(&pool, merchant, WINDOW).await? {
                Some(state) => {
                    let paused = state
                        .paused_until
                        .map(|t| format!("paused until {}", t.to_rfc3339()))
                        .unwrap_or_else(|| "not paused".into());
                    println!("{paused}; {} request(s) in the window", state.counted);
                }
                None => println!("no replica of merchant {merchant} has run yet"),
            }
        }
        PlatformCommand::Resume { .. } => {
            let resumed = platform::resume(&pool, merchant).await?;
            println!("{}", if resumed { "resumed" } else { "was not paused" });
        }
    }
    Ok(())
}

async fn run_tokens(command: TokensCommand) -> anyhow::Result<()> {
    let settings = load()?;
    migrate(&settings.database).await?;
    let pool = settings.database.pool()?;
    match command {
        TokensCommand::Create {
            account,
            permissions,
            merchants,
        } => {
            for code in &merchants {
                configured_merchant(&settings, Some(code))?;
            }
            println!(
                "{}",
                tokens::create_token(&pool, &account, &permissions, &merchants).await?
            );
        }
        TokensCommand::Revoke { account } => {
            let revoked = tokens::revoke_tokens(&pool, &account).await?;
            eprintln!("revoked {revoked} active token(s) of {account}");
        }
        TokensCommand::List { json } => {
            let listed = tokens::list_tokens(&pool).await?;
            if json {
                let rows: Vec<TokenRow> = listed.iter().map(TokenRow::from).collect();
                print_json(&rows)?;
            } else {
                print_tokens(&listed);
            }
        }
    }
    Ok(())
}

/// A token as `tokens list --json` prints it: its account and use, never the token.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenRow<'a> {
    account: &'a str,
    permissions: &'a [Permission],
    /// The merchant codes the token may see; null: every merchant.
    merchants: Option<&'a [String]>,
    active: bool,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    use_count: i64,
}

impl<'a> From<&'a TokenInfo> for TokenRow<'a> {
    fn from(t: &'a TokenInfo) -> Self {
        TokenRow {
            account: &t.account,
            permissions: &t.permissions,
            merchants: t.merchants.as_deref(),
            active: t.active,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            use_count: t.use_count,
        }
    }
}

/// Prints `rows` to stdout as one JSON array (the `--json` output of listing commands).
fn print_json<T: Serialize>(rows: &[T]) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(rows)?);
    Ok(())
}

fn print_dead_syncs(dead: &[DeadSync]) {
    println!(
        "{:<7} {:<40} {:>8} {:<20} LAST ERROR",
        "KIND", "ID", "ATTEMPTS", "DEAD SINCE"
    );
    for d in dead {
        let error = d.last_error.as_deref().unwrap_or("-");
        let died = d.dead_since.format("%Y-%m-%dT%H:%M:%SZ");
        println!(
            "{:<7} {:<40} {:>8} {:<20} {error}",
            d.kind, d.id, d.attempts, died
        );
    }
}

fn print_tokens(listed: &[TokenInfo]) {
    println!(
        "{:<24} {:<12} {:<16} {:<8} {:<25} {:<25} {:>8}",
        "ACCOUNT", "PERMISSIONS", "MERCHANTS", "ACTIVE", "CREATED", "LAST USED", "USES"
    );
    for t in listed {
        let last = t
            .last_used_at
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "-".into());
        let merchants = t
            .merchants
            .as_ref()
            .map_or_else(|| "*".to_owned(), |m| m.join(","));
        println!(
            "{:<24} {:<12} {:<16} {:<8} {:<25} {:<25} {:>8}",
            t.account,
            t.permissions
                .iter()
                .map(Permission::as_str)
                .collect::<Vec<_>>()
                .join(","),
            merchants,
            t.active,
            t.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
            last,
            t.use_count
        );
    }
}
