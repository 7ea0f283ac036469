//! Runs every contract case against both builds and every preset between them, each
//! started in-process on random ports with fresh databases per case (SQLite by default,
//! PostgreSQL when `SHOPLAB_TEST_POSTGRES_URL` is set): `monolith::<case>` against the
//! monolith, `micro::<case>` against the gateway in front of one server per context,
//! `satellites::<case>`, `browse-buy::<case>` and `coarse::<case>` against the gateway in
//! front of one server per group of those presets (`domain::topology`): the first checks out
//! locally inside its core group, the second runs the saga over in-process cart, inventory
//! and payments and a remote catalog, the third over in-process cart and payments. With `SHOPLAB_CONTRACT_BASE_URL` set, the library runs the cases against
//! that deployment instead and these start functions are not used.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use contract::{StartFn, StartedTarget, Target, TestDatabase};
use domain::topology::{self, Topology};
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Fixed secrets: cases need the token secret to mint expired tokens.
const ADMIN_TOKEN: &str = "contract-admin-token";
const METRICS_TOKEN: &str = "contract-metrics-token";
const TOKEN_SECRET: &str = "contract-token-secret";

fn main() -> ExitCode {
    let monolith: StartFn = Arc::new(start_monolith);
    let topology = |preset: &'static topology::Preset| -> StartFn {
        Arc::new(move || start_topology(Topology::of_preset(preset)))
    };
    contract::run_main(vec![
        ("monolith", monolith),
        ("micro", topology(&topology::MICRO)),
        ("satellites", topology(&topology::SATELLITES)),
        ("browse-buy", topology(&topology::BROWSE_BUY)),
        ("coarse", topology(&topology::COARSE)),
    ])
}

fn settings(db: &str) -> api::Settings {
    api::Settings {
        db: db.to_owned(),
        admin_token: Some(ADMIN_TOKEN.to_owned()),
        metrics_token: Some(METRICS_TOKEN.to_owned()),
        token_secret: Some(TOKEN_SECRET.to_owned()),
        // No simulated provider latency: the contract is about answers, not timing.
        payments_latency_ms: 0,
        ..api::Settings::default()
    }
}

async fn loopback() -> anyhow::Result<(TcpListener, String)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind a loopback port")?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((listener, url))
}

fn start_monolith() -> BoxFuture<'static, anyhow::Result<StartedTarget>> {
    Box::pin(async {
        let database = TestDatabase::create().await?;
        let (listener, base_url) = loopback().await?;
        let (shutdown, shutdown_requested) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(monolith::serve(settings(&database.url), listener, async {
            // A dropped sender also means stop.
            let _ = shutdown_requested.await;
        }));
        let target = Target {
            admin_url: base_url.clone(),
            base_url,
            admin_token: ADMIN_TOKEN.to_owned(),
            metrics_token: METRICS_TOKEN.to_owned(),
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

/// One server per group of `topology`, each over its own fresh database, and the gateway in
/// front. Every server binds first, so all addresses are known before any of them starts
/// (a context's upstream is its group's address); each is told the addresses of the contexts
/// it does not host, the gateway those of all. Each gets the keys of its own contexts from a
/// keyring made for this target, as the lab gives them.
fn start_topology(topology: Topology) -> BoxFuture<'static, anyhow::Result<StartedTarget>> {
    Box::pin(async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = move || {
            let mut stop_rx = stop_rx.clone();
            Box::pin(async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            }) as Pin<Box<dyn Future<Output = ()> + Send>>
        };
        let name = topology.to_string();
        let mut databases = Vec::new();
        let mut upstreams = BTreeMap::new();
        let keyring = domain::trust::Keyring::generate();
        let mut groups = Vec::new();
        for group in topology.groups() {
            let (listener, url) = loopback().await?;
            for context in group.contexts() {
                upstreams.insert(context.as_str().to_owned(), vec![url.clone()]);
            }
            databases.push(TestDatabase::create().await?);
            groups.push((group.clone(), listener));
        }
        let mut servers = Vec::new();
        for ((group, listener), database) in groups.into_iter().zip(&databases) {
            // Only the contexts it does not host: a co-located context that tried to call
            // another over HTTP would find no address and the group would not start.
            let remote = upstreams
                .iter()
                .filter(|(context, _)| !group.contexts().iter().any(|own| own.as_str() == *context))
                .map(|(context, urls)| (context.clone(), urls.clone()))
                .collect();
            let service_settings = api::Settings {
                upstreams: remote,
                service_key: Some(keyring.group_key(group.contexts())),
                service_public_keys: Some(keyring.public_keys()),
                ..settings(&database.url)
            };
            let shutdown = stopped();
            servers.push(tokio::spawn(async move {
                micro_kit::serve(
                    group,
                    &micro_host::MOUNTS,
                    service_settings,
                    listener,
                    shutdown,
                )
                .await
            }));
        }
        let (public, base_url) = loopback().await?;
        let (admin, admin_url) = loopback().await?;
        let gateway = domain::trust::Peer::Gateway;
        let gateway_settings = api::Settings {
            upstreams,
            service_key: Some(keyring.private_key(gateway).to_owned()),
            service_public_keys: Some(keyring.public_keys()),
            ..settings("")
        };
        servers.push(tokio::spawn(micro_gateway::serve(
            gateway_settings,
            public,
            admin,
            stopped(),
        )));
        let target = Target {
            base_url,
            admin_url,
            admin_token: ADMIN_TOKEN.to_owned(),
            metrics_token: METRICS_TOKEN.to_owned(),
            token_secret: TOKEN_SECRET.to_owned(),
        };
        let stopping = name.clone();
        let stop = async move {
            let _ = stop_tx.send(true);
            let mut outcome = Ok(());
            for server in servers {
                let served = server
                    .await
                    .context("a server task panicked")
                    .and_then(|served| served);
                if outcome.is_ok() {
                    outcome = served;
                }
            }
            for database in databases {
                database.drop_database().await?;
            }
            outcome.with_context(|| format!("a server of {stopping} failed"))
        };
        if let Err(error) = contract::wait_ready(&target.base_url, contract::READY_DEADLINE).await {
            stop.await.ok();
            return Err(error.context(format!("{name} did not become ready")));
        }
        Ok(StartedTarget::new(target, stop))
    })
}
