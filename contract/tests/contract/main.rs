//! Runs every contract case against the monolith, started in-process on a random port with
//! a fresh database per case (SQLite by default, PostgreSQL when
//! `SHOPLAB_TEST_POSTGRES_URL` is set). With `SHOPLAB_CONTRACT_BASE_URL` set, the library
//! runs the cases against that deployment instead and this start function is not used.

use std::process::ExitCode;

use anyhow::Context as _;
use contract::{StartedTarget, Target, TestDatabase};
use futures::future::BoxFuture;

/// Fixed secrets: cases need the token secret to mint expired tokens.
const ADMIN_TOKEN: &str = "contract-admin-token";
const TOKEN_SECRET: &str = "contract-token-secret";

fn main() -> ExitCode {
    contract::run_main(start_monolith)
}

fn start_monolith() -> BoxFuture<'static, anyhow::Result<StartedTarget>> {
    Box::pin(async {
        let database = TestDatabase::create().await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind a loopback port")?;
        let address = listener.local_addr()?;
        let settings = api::Settings {
            db: database.url.clone(),
            admin_token: Some(ADMIN_TOKEN.to_owned()),
            token_secret: Some(TOKEN_SECRET.to_owned()),
            // No simulated provider latency: the contract is about answers, not timing.
            payments_latency_ms: 0,
            ..api::Settings::default()
        };
        let (shutdown, shutdown_requested) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(monolith::serve(settings, listener, async {
            // A dropped sender also means stop.
            let _ = shutdown_requested.await;
        }));
        let target = Target {
            base_url: format!("http://{address}"),
            admin_token: ADMIN_TOKEN.to_owned(),
            token_secret: TOKEN_SECRET.to_owned(),
        };
        let stop = async move {
            let _ = shutdown.send(());
            let served = server.await.context("the monolith task panicked")?;
            database.drop_database().await?;
            served.context("the monolith failed")
        };
        if let Err(error) = contract::wait_ready(&target.base_url, contract::READY_DEADLINE).await {
            stop.await.ok();
            return Err(error.context("the monolith did not become ready"));
        }
        Ok(StartedTarget::new(target, stop))
    })
}
