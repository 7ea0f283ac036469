//! The gateway as its own binary (what a container runs).

use clap::Parser;

#[derive(Parser)]
#[command(about = "The shoplab gateway: the public API over the services, and an admin port")]
struct Cli {
    #[command(flatten)]
    serve: api::cli::ServeArgs,
    /// Port of the admin API (reset, audit, faults; needs the admin token).
    #[arg(long, default_value_t = 8081)]
    admin_port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    micro_gateway::run(&cli.serve, cli.admin_port).await
}
