//! The monolith as its own binary (what a container or the lab's local target runs).

use clap::Parser;

#[derive(Parser)]
#[command(about = "The shoplab monolith: the whole shop in one process")]
struct Cli {
    #[command(flatten)]
    serve: api::cli::ServeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    monolith::run(&cli.serve).await
}
