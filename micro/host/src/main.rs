//! `micro-host --group catalog+recommendations [--name storefront]`: one process of any
//! topology between the monolith and the microservices (what the `shoplab/host` image runs).

use clap::Parser;

#[derive(Parser)]
#[command(about = "Hosts any group of shoplab contexts in one process, over one database")]
struct Cli {
    /// The contexts this process hosts, joined by `+` (`catalog+recommendations`); one
    /// context alone is its microservice.
    #[arg(long, value_parser = micro_host::parse_group)]
    group: domain::topology::Group,
    /// What the process calls itself in its logs (its preset's group name, e.g. `core`);
    /// its contexts joined by `+` when absent.
    #[arg(long, value_parser = micro_host::parse_process_name)]
    name: Option<String>,
    #[command(flatten)]
    serve: api::cli::ServeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    micro_host::run(cli.group, cli.name, &cli.serve).await
}
