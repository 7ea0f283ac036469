//! `shoplab`: the lab's entry point.
//!
//! Today it serves a build (`shoplab serve monolith`); the harness commands (`compare`,
//! `load`, `check`) grow here.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "shoplab",
    version,
    about = "One shop built twice — a monolith and microservices — and a lab that measures both"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start one build of the shop and serve until Ctrl-C.
    Serve {
        #[command(subcommand)]
        build: Build,
    },
}

#[derive(Subcommand)]
enum Build {
    /// The whole shop in one process over one database (SQLite by default).
    ///
    /// Example: shoplab serve monolith --port 8080 --seed 42
    Monolith {
        #[command(flatten)]
        serve: api::cli::ServeArgs,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve {
            build: Build::Monolith { serve },
        } => monolith::run(&serve).await,
    }
}
