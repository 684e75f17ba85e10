//! The `paymirror` binary: parses the command line and runs it (`cli`).

use clap::Parser;

/// mimalloc rather than glibc's malloc: the hot paths allocate per request (rows,
/// strings, futures), and glibc's allocator was a tenth of the process's time
/// serving `GET /v1/payins/{id}` (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = paymirror::cli::Cli::parse();
    let outcome = paymirror::cli::run(cli).await;
    // The log lines still queued for the writer thread, before the process ends.
    paymirror::telemetry::finish();
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paymirror: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
