use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = paymirror::cli::Cli::parse();
    match paymirror::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paymirror: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
