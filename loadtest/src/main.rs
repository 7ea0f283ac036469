//! `shoplab`: the lab's command. Everything it does lives in the library (`shoplab::cli`).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shoplab::cli::run(shoplab::cli::Cli::parse()).await
}
