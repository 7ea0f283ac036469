//! The gateway of the microservices build: the public API on one port, the admin API on
//! another.
//!
//! The public port mounts the very router the monolith mounts (`api::public::router`), over a
//! `domain::Shop` whose contexts are HTTP clients of the services (`micro_rpc::*Client`). So
//! the handlers, the validation and the JSON are the monolith's; what differs is the hop.
//! Nothing under `/admin` or `/internal` is reachable there: those paths are simply not
//! mounted, and answer 404 like any unknown path.
//!
//! The admin port is for operators and the lab: reset, audit and faults, fanned out to the
//! services that own the data and the fault registries ([`admin`]), plus `/health`,
//! `/ready` and `/metrics`. `/metrics` is on both ports, and needs the admin token on both
//! (`api::ops`).

mod admin;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use api::Settings;
use api::metrics::Metrics;
use api::ops::{OpsState, Readiness};
use async_trait::async_trait;
use domain::tokens::TokenKeys;
use domain::{Context, DomainResult, Shop};
use micro_rpc::Upstream;
use micro_rpc::cart::CartClient;
use micro_rpc::catalog::CatalogClient;
use micro_rpc::inventory::InventoryClient;
use micro_rpc::orders::OrdersClient;
use micro_rpc::recommendations::RecommendationsClient;
use micro_rpc::users::UsersClient;
use tokio::net::TcpListener;

pub use admin::GatewayAdmin;

/// The contexts the public API cannot answer without; `/ready` asks each of them.
///
/// `inventory` and `recommendations` are left out on purpose: the product page falls back
/// to `availability: "unknown"` and `recommendations: []` without them, so a gateway whose
/// inventory is down can still serve browsing and must not be taken out of rotation.
pub const REQUIRED: [Context; 4] = [
    Context::Catalog,
    Context::Cart,
    Context::Orders,
    Context::Users,
];

/// Serves the public API on `public` and the admin API on `admin` until `shutdown`
/// resolves, then drains both. Prints both addresses once it is ready to serve (the
/// supervisor reads the `listening on` line, which comes last).
pub async fn serve(
    settings: Settings,
    public: TcpListener,
    admin: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let gateway = Gateway::new(settings)?;
    let limits = api::server::Limits::of(&gateway.settings);
    let delay = Duration::from_millis(gateway.settings.shutdown_delay_ms);
    let public_address = public.local_addr()?;
    let admin_address = admin.local_addr()?;
    let (public_router, admin_router) = gateway.routers();

    // One shutdown future, two servers: a watch channel lets both hear it.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = gateway.stopping.after(shutdown, delay);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut stop: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stopping| *stopping).await;
    };

    println!("shoplab gateway admin on http://{admin_address}");
    println!("shoplab gateway listening on http://{public_address}");
    tracing::info!(%public_address, %admin_address, "gateway ready to serve");
    tokio::try_join!(
        api::server::serve(public, public_router, stopped(stop_rx.clone()), limits),
        api::server::serve(admin, admin_router, stopped(stop_rx), limits),
    )?;
    Ok(())
}

/// Starts the gateway from command-line flags (public port from `--port`, default 8080;
/// admin port `admin_port`) and serves until SIGTERM/SIGINT.
pub async fn run(args: &api::cli::ServeArgs, admin_port: u16) -> anyhow::Result<()> {
    let settings = args.settings()?;
    api::telemetry::init(&settings.log_format);
    let public_address = args.address(8080);
    let public = TcpListener::bind(&public_address)
        .await
        .with_context(|| format!("bind the gateway on {public_address}"))?;
    let admin_address = format!(
        "{}:{admin_port}",
        args.bind.as_deref().unwrap_or("127.0.0.1")
    );
    let admin = TcpListener::bind(&admin_address)
        .await
        .with_context(|| format!("bind the gateway's admin port on {admin_address}"))?;
    serve(settings, public, admin, api::server::shutdown_signal()).await
}

/// A gateway's parts, wired from settings.
struct Gateway {
    settings: Settings,
    /// One registry for both ports and for the hops to the services.
    metrics: Metrics,
    shop: Shop,
    admin: GatewayAdmin,
    readiness: Arc<dyn Readiness>,
    /// What `/metrics` on either port accepts as a bearer token: the admin token, and the
    /// metrics token, which opens nothing else.
    admin_token: Arc<str>,
    metrics_token: Arc<str>,
    /// Set once the process was told to stop: `/ready` on either port then answers 503.
    stopping: api::server::Stopping,
}

impl Gateway {
    fn new(mut settings: Settings) -> anyhow::Result<Gateway> {
        // Users signs the bearer tokens and the gateway verifies them locally (no call to
        // users per request), so both must hold the same secret; a generated one would make
        // every token users issues look forged here.
        let secret = settings.token_secret.clone().context(
            "the gateway needs token_secret (SHOPLAB_TOKEN_SECRET): it verifies the tokens users signs",
        )?;
        let admin_token = settings.admin_token_or_new("gateway");
        let metrics_token = Arc::from(settings.metrics_token_or_new("gateway"));
        let identity = micro_kit::identity(&settings, domain::trust::Peer::Gateway)?;
        let metrics = Metrics::new();
        let hops = metrics.hops();
        // One client per context, shared by the shop and `/ready`, so one set of breakers
        // and one retry budget per context. Payments has no public route, but the admin port
        // audits and resets it, so it must be configured too.
        let directory = micro_kit::directory(&settings);
        let mut clients = std::collections::BTreeMap::new();
        for context in [
            Context::Catalog,
            Context::Inventory,
            Context::Cart,
            Context::Orders,
            Context::Users,
            Context::Recommendations,
            Context::Payments,
        ] {
            clients.insert(
                context,
                micro_kit::upstream(&settings, context, &directory, &hops, &identity)?,
            );
        }
        let client = |context: Context| clients[&context].clone();
        let shop = Shop {
            catalog: Arc::new(CatalogClient(client(Context::Catalog))),
            inventory: Arc::new(InventoryClient(client(Context::Inventory))),
            cart: Arc::new(CartClient(client(Context::Cart))),
            orders: Arc::new(OrdersClient(client(Context::Orders))),
            users: Arc::new(UsersClient(client(Context::Users))),
            recommendations: Arc::new(RecommendationsClient(client(Context::Recommendations))),
            tokens: TokenKeys::new(secret.as_bytes(), settings.token_ttl_secs),
        };
        let required: Vec<Upstream> = REQUIRED.into_iter().map(client).collect();
        let scrape_admin_token = Arc::from(admin_token.as_str());
        let admin = GatewayAdmin::new(&directory, admin_token)?;
        Ok(Gateway {
            settings,
            metrics,
            shop,
            admin,
            readiness: Arc::new(UpstreamReadiness { required }),
            admin_token: scrape_admin_token,
            metrics_token,
            stopping: api::server::Stopping::default(),
        })
    }

    /// The public router and the admin router, each with the common layers. They share one
    /// metrics registry, so a scrape of either port sees the whole gateway.
    fn routers(&self) -> (axum::Router, axum::Router) {
        let metrics = &self.metrics;
        let ops = || {
            api::ops::router(OpsState {
                readiness: self.readiness.clone(),
                metrics: metrics.clone(),
                stopping: self.stopping.clone(),
                admin_token: self.admin_token.clone(),
                metrics_token: self.metrics_token.clone(),
            })
        };
        let public = api::public::router(self.shop.clone())
            .merge(api::openapi::router())
            .merge(ops());
        let admin = self.admin.clone().router().merge(ops());
        let body_limit = self.settings.body_limit_bytes;
        (
            api::server::finish(public, metrics, body_limit),
            api::server::finish(admin, metrics, body_limit),
        )
    }
}

/// The gateway is ready when every context it cannot live without answers.
struct UpstreamReadiness {
    required: Vec<Upstream>,
}

#[async_trait]
impl Readiness for UpstreamReadiness {
    async fn check(&self) -> DomainResult<()> {
        // Asked side by side, so `/ready` takes as long as the slowest probe, not the sum.
        let probes = futures::future::join_all(self.required.iter().map(Upstream::probe)).await;
        probes.into_iter().collect()
    }
}
