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
    micro_kit::run_group(
        domain::Context::Recommendations.into(),
        &[(
            domain::Context::Recommendations,
            micro_recommendations::mount,
        )],
        &cli.serve,
    )
    .await
}
