//! The users service as its own binary (what a container runs).

use clap::Parser;

#[derive(Parser)]
#[command(about = "The shoplab users service")]
struct Cli {
    #[command(flatten)]
    serve: api::cli::ServeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    micro_kit::run_group(
        domain::Context::Users.into(),
        &[(domain::Context::Users, micro_users::mount)],
        &cli.serve,
    )
    .await
}
