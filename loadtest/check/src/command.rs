//! `shoplab check`: fetch a running shop's audit, check the invariants, print the table and
//! fail the command when any invariant is violated.

use std::path::PathBuf;

use super::{check, fetch_audit};
use loadtest_results::history::read_jsonl;

/// Flags of `shoplab check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The shop's public URL, e.g. http://127.0.0.1:8080 (the monolith or the micro gateway).
    #[arg(long, value_name = "URL", required_unless_present = "admin_url")]
    pub base_url: Option<String>,
    /// Where the shop serves /admin, when not on the public URL: the micro gateway's admin
    /// port. Defaults to --base-url (the monolith serves /admin on its public port).
    #[arg(long, value_name = "URL")]
    pub admin_url: Option<String>,
    /// The admin token the shop was started with.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SHOPLAB_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: String,
    /// The history.jsonl a load run wrote. Without it, I3 (acknowledged orders exist) and
    /// I4 (no order nobody asked for) are not checked.
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `shoplab check`; an `Err` (exit status 1) when any invariant is violated or the
/// audit could not be read.
pub async fn run(args: CheckArgs) -> anyhow::Result<()> {
    let admin_url = args
        .admin_url
        .or(args.base_url)
        .ok_or_else(|| anyhow::anyhow!("give --base-url or --admin-url"))?;
    let history = args.history.as_deref().map(read_jsonl).transpose()?;
    let audit = fetch_audit(&admin_url, &args.admin_token).await?;
    let report = check(&audit, history.as_deref());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    let violated = report.violated().count();
    if violated > 0 {
        anyhow::bail!(
            "{violated} of {} invariants violated",
            report.invariants.len()
        );
    }
    Ok(())
}
