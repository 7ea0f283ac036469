//! The monolith: every context in one process over one database.
//!
//! Contexts call each other in-process through the same traits the gateway calls over HTTP.
//! The one deliberate difference is checkout ([`checkout`]): here it runs over local
//! transactions on the one database — by default two, with the payment provider called
//! between them (`checkout_mode = "split"`), or one around everything (`"single"`).

mod admin;
mod checkout;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use api::Settings;
use api::metrics::{Metrics, PoolSample};
use api::ops::{OpsState, Readiness};
use async_trait::async_trait;
use domain::admin::{Admin, ResetRequest};
use domain::faults::Faults;
use domain::tokens::TokenKeys;
use domain::users::ThrottledUsers;
use domain::{Context, DomainResult, Shop};
use store::cart::SqlCart;
use store::catalog::SqlCatalog;
use store::inventory::SqlInventory;
use store::recommendations::SqlRecommendations;
use store::users::SqlUsers;
use store::{Db, DbOptions, db_error};
use tokio::net::TcpListener;

pub use admin::MonolithAdmin;
pub use checkout::MonolithOrders;

/// Serves the monolith on `listener` until `shutdown` resolves.
pub async fn serve(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let limits = api::server::Limits::of(&settings);
    let delay = Duration::from_millis(settings.shutdown_delay_ms);
    let monolith = Monolith::open(settings).await?;
    let maintenance = monolith.maintain();
    let router = monolith.router();
    let shutdown = monolith.stopping.after(shutdown, delay);
    let served = api::server::serve(listener, router, shutdown, limits).await;
    // Stopped before the pools close, so it does not find them closing under it.
    drop(maintenance);
    monolith.db.close().await;
    served
}

/// An opened monolith: database migrated (and seeded when asked), contexts wired.
pub struct Monolith {
    pub settings: Settings,
    pub db: Db,
    pub faults: Faults,
    pub shop: Shop,
    /// The same checkout as `shop.orders`, for the recovery loop.
    pub orders: Arc<MonolithOrders>,
    pub admin: Arc<dyn Admin>,
    pub admin_token: String,
    /// Opens `/metrics` only (`api::Settings::metrics_token`).
    pub metrics_token: String,
    /// Set once the process was told to stop: `/ready` then answers 503.
    pub stopping: api::server::Stopping,
}

impl Monolith {
    pub async fn open(mut settings: Settings) -> anyhow::Result<Monolith> {
        let admin_token = settings.admin_token_or_new("monolith");
        let metrics_token = settings.metrics_token_or_new("monolith");
        let db_options = DbOptions {
            max_connections: settings.db_max_connections,
            acquire_timeout: Duration::from_millis(settings.db_acquire_timeout_ms),
        };
        let db = Db::connect(&settings.db, &db_options)
            .await
            .with_context(|| format!("open database {}", redact(&settings.db)))?;
        db.migrate(&Context::ALL).await.context("run migrations")?;
        // A configured secret wins. Without one, the secret is generated once and kept in
        // the shop's own database, so a restart (or a second process on the same database)
        // accepts the tokens already issued: the one place every backend and every
        // platform keeps across restarts, which a file beside a SQLite database is not for
        // PostgreSQL. Whoever can read the database can then sign tokens; they can already
        // read every account.
        let token_secret = match settings.token_secret.clone() {
            Some(secret) => secret,
            None => store::users::kept_token_secret(&db, &random_secret())
                .await
                .map_err(|error| anyhow::anyhow!("keep the token secret: {error}"))?,
        };
        let faults = Faults::new();
        let tokens = TokenKeys::new(token_secret.as_bytes(), settings.token_ttl_secs);
        let orders = Arc::new(MonolithOrders::new(db.clone(), faults.clone(), &settings));
        // Shared with the admin API: a reset forgets every failed-login count.
        let login_throttles = settings.login_throttles();
        let shop = Shop {
            catalog: Arc::new(SqlCatalog::new(db.clone(), faults.clone())),
            inventory: Arc::new(SqlInventory::new(db.clone(), faults.clone())),
            cart: Arc::new(SqlCart::new(db.clone(), faults.clone())),
            orders: orders.clone(),
            users: Arc::new(ThrottledUsers::new(
                SqlUsers::new(db.clone(), faults.clone(), tokens.clone()),
                login_throttles.clone(),
            )),
            recommendations: Arc::new(SqlRecommendations::new(db.clone(), faults.clone())),
            tokens,
        };
        let admin: Arc<dyn Admin> = Arc::new(MonolithAdmin::new(db.clone(), login_throttles));
        // A first start on an empty database seeds with the default seed, so the README's
        // one command gives a shop with something in it; an existing shop is left alone.
        let seed = match settings.seed {
            Some(seed) => Some(seed),
            None if catalog_is_empty(&db).await? => {
                tracing::info!("empty database: seeding with seed 42 (pass --seed to choose)");
                Some(42)
            }
            None => None,
        };
        if let Some(seed) = seed {
            let request = ResetRequest {
                products: settings.seed_products,
                stock: settings.seed_stock,
                users: settings.seed_users,
                seed,
            };
            request
                .validate()
                .map_err(|error| anyhow::anyhow!("seed settings: {error}"))?;
            let summary = admin
                .reset(&request)
                .await
                .map_err(|error| anyhow::anyhow!("seed: {error}"))?;
            tracing::info!(
                seed.products = summary.products,
                seed.users = summary.users,
                seed.seed = summary.seed,
                "shop seeded; seeded users log in as user<i>@shoplab.test with password {}",
                summary.user_password
            );
        }
        Ok(Monolith {
            settings,
            db,
            faults,
            shop,
            orders,
            admin,
            admin_token,
            metrics_token,
            stopping: api::server::Stopping::default(),
        })
    }

    /// Starts the background loop that finishes abandoned checkouts and releases expired
    /// reservations (one pass at once, then every [`checkout::MAINTAIN_EVERY`]); it stops
    /// when the returned guard is dropped. Only a split checkout can leave either behind a
    /// crash, but the loop runs in both modes: a database may have been served in the other.
    pub fn maintain(&self) -> Maintenance {
        let orders = self.orders.clone();
        let inventory = SqlInventory::new(self.db.clone(), self.faults.clone());
        Maintenance(tokio::spawn(async move {
            let mut every = tokio::time::interval(checkout::MAINTAIN_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                orders.recover_abandoned_logged().await;
                inventory.sweep_expired().await;
            }
        }))
    }

    /// Public API + admin + ops + OpenAPI, with the common layers.
    pub fn router(&self) -> axum::Router {
        let metrics = Metrics::new();
        let db = self.db.clone();
        metrics.watch_pools(move || db.pool_use().into_iter().map(pool_sample).collect());
        let ops = OpsState {
            readiness: Arc::new(DatabaseReadiness(self.db.clone())),
            metrics: metrics.clone(),
            stopping: self.stopping.clone(),
            admin_token: Arc::from(self.admin_token.as_str()),
            metrics_token: Arc::from(self.metrics_token.as_str()),
        };
        let admin = api::admin::AdminState {
            admin: self.admin.clone(),
            faults: self.faults.clone(),
            token: Arc::from(self.admin_token.as_str()),
        };
        let router = api::public::router(self.shop.clone())
            .merge(api::admin::router(admin))
            .merge(api::ops::router(ops))
            .merge(api::openapi::router());
        api::server::finish(router, &metrics, self.settings.body_limit_bytes)
    }
}

async fn catalog_is_empty(db: &Db) -> anyhow::Result<bool> {
    let (products,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM products")
        .fetch_one(db.reader())
        .await
        .context("count products")?;
    Ok(products == 0)
}

fn pool_sample(pool: store::PoolUse) -> PoolSample {
    PoolSample {
        pool: pool.pool,
        open: pool.open,
        idle: pool.idle,
        max: pool.max,
    }
}

/// The background loop of [`Monolith::maintain`]; aborted when dropped, however the owner
/// goes away, so a stopped monolith touches its database no more.
pub struct Maintenance(tokio::task::JoinHandle<()>);

impl Drop for Maintenance {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The monolith is ready when its one database answers.
struct DatabaseReadiness(Db);

#[async_trait]
impl Readiness for DatabaseReadiness {
    async fn check(&self) -> DomainResult<()> {
        self.0.ping().await.map_err(db_error)
    }
}

fn random_secret() -> String {
    hex::encode(rand::random::<[u8; 24]>())
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://…@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Starts the monolith from command-line flags and serves until SIGTERM/SIGINT. Prints the
/// address it listens on (scripts and the lab read that line).
pub async fn run(args: &api::cli::ServeArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    api::telemetry::init(&settings.log_format);
    let address = args.address(8080);
    let listener = TcpListener::bind(&address)
        .await
        .with_context(|| format!("bind {address}"))?;
    let local = listener.local_addr()?;
    let limits = api::server::Limits::of(&settings);
    let delay = Duration::from_millis(settings.shutdown_delay_ms);
    let monolith = Monolith::open(settings).await?;
    let maintenance = monolith.maintain();
    println!("shoplab monolith listening on http://{local}");
    tracing::info!(
        address = %local,
        backend = ?monolith.db.backend(),
        checkout_mode = monolith.settings.checkout_mode.as_str(),
        "monolith ready to serve"
    );
    let served = api::server::serve(
        listener,
        monolith.router(),
        monolith
            .stopping
            .after(api::server::shutdown_signal(), delay),
        limits,
    )
    .await;
    // Stopped before the pools close, so it does not find them closing under it.
    drop(maintenance);
    monolith.db.close().await;
    served
}
