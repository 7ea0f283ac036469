//! The `shoplab` command line: which subcommand runs what.

use clap::{Parser, Subcommand};

use crate::micro::MicroArgs;
use crate::supervisor::Component;

#[derive(Parser)]
#[command(
    name = "shoplab",
    version,
    about = "One shop built twice — a monolith and microservices — and a lab that measures both"
)]
pub struct Cli {
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
    /// One process of the microservices build, as `serve micro` starts it.
    #[command(hide = true)]
    Service {
        /// `catalog`, `inventory`, `cart`, `orders`, `payments`, `users`,
        /// `recommendations` or `gateway`.
        #[arg(value_parser = parse_component)]
        name: Component,
        /// The gateway's admin port.
        #[arg(long, default_value_t = 0)]
        admin_port: u16,
        #[command(flatten)]
        serve: api::cli::ServeArgs,
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
    /// One process per service plus the gateway, each over its own database.
    ///
    /// Example: shoplab serve micro --port 8080 --replicas catalog=2
    Micro(MicroArgs),
}

fn parse_component(name: &str) -> Result<Component, String> {
    Component::parse(name).ok_or_else(|| format!("{name:?} is not a service"))
}

/// Runs the command the flags name.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            build: Build::Monolith { serve },
        } => monolith::run(&serve).await,
        Command::Serve {
            build: Build::Micro(args),
        } => crate::micro::serve(args).await,
        Command::Service {
            name,
            admin_port,
            serve,
        } => crate::service::run(name, admin_port, &serve).await,
    }
}
