//! Runs every contract case against both builds, each started in-process on random ports
//! with fresh databases per case (SQLite by default, PostgreSQL when
//! `SHOPLAB_TEST_POSTGRES_URL` is set): `monolith::<case>` against the monolith,
//! `micro::<case>` against the gateway in front of one server per context. With
//! `SHOPLAB_CONTRACT_BASE_URL` set, the library runs the cases against that deployment
//! instead and these start functions are not used.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use contract::{StartFn, StartedTarget, Target, TestDatabase};
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Fixed secrets: cases need the token secret to mint expired tokens.
const ADMIN_TOKEN: &str = "contract-admin-token";
const METRICS_TOKEN: &str = "contract-metrics-token";
const TOKEN_SECRET: &str = "contract-token-secret";

fn main() -> ExitCode {
    let monolith: StartFn = Arc::new(start_monolith);
    let micro: StartFn = Arc::new(start_micro);
    contract::run_main(vec![("monolith", monolith), ("micro", micro)])
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

type ServeFn = fn(
    api::Settings,
    TcpListener,
    Pin<Box<dyn Future<Output = ()> + Send>>,
) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// The services in start order: leaves first, `orders` (which calls four of them) last.
fn services() -> [(&'static str, ServeFn); 7] {
    [
        ("catalog", |s, l, d| Box::pin(micro_catalog::serve(s, l, d))),
        ("inventory", |s, l, d| {
            Box::pin(micro_inventory::serve(s, l, d))
        }),
        ("cart", |s, l, d| Box::pin(micro_cart::serve(s, l, d))),
        ("payments", |s, l, d| {
            Box::pin(micro_payments::serve(s, l, d))
        }),
        ("users", |s, l, d| Box::pin(micro_users::serve(s, l, d))),
        ("recommendations", |s, l, d| {
            Box::pin(micro_recommendations::serve(s, l, d))
        }),
        ("orders", |s, l, d| Box::pin(micro_orders::serve(s, l, d))),
    ]
}

/// One server per context, each over its own fresh database, and the gateway in front.
/// Every server binds first, so all addresses are known before any of them starts. Each
/// gets its own service key from a keyring made for this target, as the lab gives them.
fn start_micro() -> BoxFuture<'static, anyhow::Result<StartedTarget>> {
    Box::pin(async {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = move || {
            let mut stop_rx = stop_rx.clone();
            Box::pin(async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            }) as Pin<Box<dyn Future<Output = ()> + Send>>
        };
        let mut databases = Vec::new();
        let mut listeners = Vec::new();
        let mut upstreams = BTreeMap::new();
        let keyring = domain::trust::Keyring::generate();
        let keyed = |settings: api::Settings, peer: domain::trust::Peer| api::Settings {
            service_key: Some(keyring.private_key(peer).to_owned()),
            service_public_keys: Some(keyring.public_keys()),
            ..settings
        };
        let mut names = Vec::new();
        for (name, serve) in services() {
            names.push(name);
            let (listener, url) = loopback().await?;
            upstreams.insert(name.to_owned(), vec![url]);
            databases.push(TestDatabase::create().await?);
            listeners.push((serve, listener));
        }
        let mut servers = Vec::new();
        for (((serve, listener), database), name) in
            listeners.into_iter().zip(&databases).zip(names)
        {
            let peer = domain::trust::Peer::parse(name).context("a service's name")?;
            let service_settings = keyed(
                api::Settings {
                    upstreams: upstreams.clone(),
                    ..settings(&database.url)
                },
                peer,
            );
            servers.push(tokio::spawn(serve(service_settings, listener, stopped())));
        }
        let (public, base_url) = loopback().await?;
        let (admin, admin_url) = loopback().await?;
        let gateway_settings = keyed(
            api::Settings {
                upstreams,
                ..settings("")
            },
            domain::trust::Peer::Gateway,
        );
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
        let stop = async move {
            let _ = stop_tx.send(true);
            let mut outcome = Ok(());
            for server in servers {
                let served = server
                    .await
                    .context("a micro server task panicked")
                    .and_then(|served| served);
                if outcome.is_ok() {
                    outcome = served;
                }
            }
            for database in databases {
                database.drop_database().await?;
            }
            outcome.context("a micro server failed")
        };
        if let Err(error) = contract::wait_ready(&target.base_url, contract::READY_DEADLINE).await {
            stop.await.ok();
            return Err(error.context("the micro build did not become ready"));
        }
        Ok(StartedTarget::new(target, stop))
    })
}
