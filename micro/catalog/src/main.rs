//! The catalog service as its own binary (what a container runs).

use clap::Parser;

#[derive(Parser)]
#[command(about = "The shoplab catalog service")]
struct Cli {
    #[command(flatten)]
    serve: api::cli::ServeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    micro_kit::run_group(
        domain::Context::Catalog.into(),
        &[(domain::Context::Catalog, micro_catalog::mount)],
        &cli.serve,
    )
    .await
}
