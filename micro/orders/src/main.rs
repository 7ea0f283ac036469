//! The orders service as its own binary (what a container runs).

use clap::Parser;

#[derive(Parser)]
#[command(about = "The shoplab orders service")]
struct Cli {
    #[command(flatten)]
    serve: api::cli::ServeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    micro_kit::run_group(
        domain::Context::Orders.into(),
        &[(domain::Context::Orders, micro_orders::mount)],
        &cli.serve,
    )
    .await
}
