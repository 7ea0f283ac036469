//! The recommendations service as its own binary (what a container runs).

use clap::Parser;

#[derive(Parser)]
#[command(about = "The shoplab recommendations service")]
struct Cli {
    #[command(flatten)]
    serve: api::cli::ServeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    micro_kit::run(
        domain::Context::Recommendations,
        &cli.serve,
        micro_recommendations::serve,
    )
    .await
}
