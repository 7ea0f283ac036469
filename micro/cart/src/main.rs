//! The cart service as its own binary (what a container runs).

use clap::Parser;

#[derive(Parser)]
#[command(about = "The shoplab cart service")]
struct Cli {
    #[command(flatten)]
    serve: api::cli::ServeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    micro_kit::run_group(
        domain::Context::Cart.into(),
        &[(domain::Context::Cart, micro_cart::mount)],
        &cli.serve,
    )
    .await
}
