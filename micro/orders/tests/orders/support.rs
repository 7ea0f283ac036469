//! A whole checkout neighbourhood per test: catalog, inventory, cart and payments served in
//! this test's runtime, and orders in a runtime of its own so a test can kill it the way a
//! crash would — every task, in-flight requests and the recovery loop included.

use std::time::{Duration, Instant};

use anyhow::Result;
use domain::admin::Audit;
use domain::cart::Cart;
use domain::orders::{CheckoutOutcome, CheckoutRequest, Orders};
use domain::trust::{Keyring, Peer};
use domain::{Context, DomainResult};
use micro_rpc::cart::CartClient;
use micro_rpc::orders::OrdersClient;
use micro_rpc::{Upstream, UpstreamSettings};
use sqlx::Connection as _;
use tokio::sync::oneshot;

pub const ADMIN_TOKEN: &str = "orders-test-admin-token";
/// Units of each of the 20 seeded products.
pub const SEED_STOCK: i64 = 3;
/// Generous for two shared cores; a healthy run takes a fraction of it.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Where the services keep their data: SQLite files, or databases on a PostgreSQL server
/// (its URL, without a database path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

/// One database per service, deleted at the end.
struct Databases {
    folder: tempfile::TempDir,
    postgres: Option<(String, Vec<String>)>,
}

impl Databases {
    fn new(backend: Backend) -> Result<Databases> {
        let postgres = match backend {
            Backend::Sqlite => None,
            Backend::Postgres(server) => Some((server, Vec::new())),
        };
        Ok(Databases {
            folder: tempfile::tempdir()?,
            postgres,
        })
    }

    async fn url(&mut self, context: Context) -> Result<String> {
        match &mut self.postgres {
            None => Ok(format!(
                "sqlite://{}",
                self.folder.path().join(format!("{context}.db")).display()
            )),
            Some((server, names)) => {
                let name = format!("shoplab_orders_{context}_{}", uuid::Uuid::new_v4().simple());
                let mut connection =
                    sqlx::PgConnection::connect(&format!("{server}/postgres")).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut connection)
                    .await?;
                connection.close().await.ok();
                names.push(name.clone());
                Ok(format!("{server}/{name}"))
            }
        }
    }

    async fn drop_all(&mut self) {
        if let Some((server, names)) = &mut self.postgres {
            let Ok(mut connection) =
                sqlx::PgConnection::connect(&format!("{server}/postgres")).await
            else {
                return;
            };
            for name in names.drain(..) {
                let statement = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(&mut connection)
                    .await
                    .ok();
            }
        }
    }
}

/// A service's settings: its database, the test's values, and `peer`'s own key from the
/// shop's keyring.
fn settings(db: String, keyring: &Keyring, peer: Peer) -> api::Settings {
    api::Settings {
        db,
        service_key: Some(keyring.private_key(peer).to_owned()),
        service_public_keys: Some(keyring.public_keys()),
        admin_token: Some(ADMIN_TOKEN.to_owned()),
        token_secret: Some("orders-test-token-secret".to_owned()),
        seed: Some(7),
        seed_products: 20,
        seed_stock: SEED_STOCK,
        seed_users: 3,
        payments_latency_ms: 1,
        // Short hops keep the tests that wait for timeouts and recovery quick: the saga is
        // taken over after `recover_after` = max(2 s, 3 x 500 ms + 2 x 100 ms + 1 s)
        // = 2.7 s of silence (three attempts, two backoffs, the margin).
        hop_timeout_ms: 500,
        ..api::Settings::default()
    }
}

/// The orders service in a runtime of its own; dropping or killing it stops every task.
struct OrdersProcess {
    runtime: Option<tokio::runtime::Runtime>,
}

impl OrdersProcess {
    fn start(settings: api::Settings) -> Result<(OrdersProcess, String)> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            if let Err(error) =
                micro_orders::serve(settings, listener, std::future::pending()).await
            {
                eprintln!("orders stopped: {error:#}");
            }
        });
        Ok((
            OrdersProcess {
                runtime: Some(runtime),
            },
            url,
        ))
    }

    fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for OrdersProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Shop {
    pub catalog: String,
    pub inventory: String,
    pub cart: String,
    pub payments: String,
    pub orders: String,
    orders_settings: api::Settings,
    orders_process: OrdersProcess,
    stops: Vec<oneshot::Sender<()>>,
    databases: Databases,
    http: reqwest::Client,
    /// The test calls orders and cart as the gateway would, with the gateway's identity,
    /// and empties a cart as only orders may, with orders' identity.
    gateway: std::sync::Arc<domain::trust::Identity>,
    orders_identity: std::sync::Arc<domain::trust::Identity>,
}

impl Shop {
    pub async fn start(backend: Backend) -> Result<Shop> {
        Shop::start_with(backend, |_| {}).await
    }

    /// Like [`Shop::start`], with `tweak` applied to the orders service's settings.
    pub async fn start_with(
        backend: Backend,
        tweak: impl FnOnce(&mut api::Settings),
    ) -> Result<Shop> {
        Shop::start_stocked(backend, SEED_STOCK, tweak).await
    }

    /// Like [`Shop::start_with`], with `stock` units of each product instead of
    /// [`SEED_STOCK`]: for a test that sells more than the usual shelf holds.
    pub async fn start_stocked(
        backend: Backend,
        stock: i64,
        tweak: impl FnOnce(&mut api::Settings),
    ) -> Result<Shop> {
        let mut databases = Databases::new(backend)?;
        let mut stops = Vec::new();
        let mut upstreams = std::collections::BTreeMap::new();
        let keyring = Keyring::generate();
        for context in [
            Context::Catalog,
            Context::Inventory,
            Context::Cart,
            Context::Payments,
        ] {
            let mut settings = settings(
                databases.url(context).await?,
                &keyring,
                Peer::Service(context),
            );
            settings.seed_stock = stock;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}", listener.local_addr()?);
            let (stop, stopped) = oneshot::channel::<()>();
            let shutdown = async move {
                stopped.await.ok();
            };
            let served = match context {
                Context::Catalog => {
                    tokio::spawn(micro_catalog::serve(settings, listener, shutdown))
                }
                Context::Inventory => {
                    tokio::spawn(micro_inventory::serve(settings, listener, shutdown))
                }
                Context::Cart => tokio::spawn(micro_cart::serve(settings, listener, shutdown)),
                _ => tokio::spawn(micro_payments::serve(settings, listener, shutdown)),
            };
            // A service that fails to start says why instead of timing the test out.
            tokio::spawn(async move {
                if let Ok(Err(error)) = served.await {
                    eprintln!("{context} stopped: {error:#}");
                }
            });
            stops.push(stop);
            upstreams.insert(context.as_str().to_owned(), vec![url]);
        }
        let mut orders_settings = settings(
            databases.url(Context::Orders).await?,
            &keyring,
            Peer::Service(Context::Orders),
        );
        orders_settings.upstreams = upstreams.clone();
        tweak(&mut orders_settings);
        let (orders_process, orders) = OrdersProcess::start(orders_settings.clone())?;
        let url_of = |context: Context| upstreams[context.as_str()][0].clone();
        let shop = Shop {
            catalog: url_of(Context::Catalog),
            inventory: url_of(Context::Inventory),
            cart: url_of(Context::Cart),
            payments: url_of(Context::Payments),
            orders,
            orders_settings,
            orders_process,
            stops,
            databases,
            http: reqwest::Client::new(),
            gateway: std::sync::Arc::new(keyring.identity(Peer::Gateway)),
            orders_identity: std::sync::Arc::new(keyring.identity(Peer::Service(Context::Orders))),
        };
        for url in [
            &shop.catalog,
            &shop.inventory,
            &shop.cart,
            &shop.payments,
            &shop.orders,
        ] {
            shop.wait_ready(url).await?;
        }
        Ok(shop)
    }

    /// Kills orders the hard way: its runtime stops, in-flight checkouts die mid-step.
    pub fn kill_orders(&mut self) {
        self.orders_process.kill();
    }

    /// Starts orders again on the same database (not seeded: a restart keeps its data).
    pub async fn restart_orders(&mut self) -> Result<()> {
        let mut settings = self.orders_settings.clone();
        settings.seed = None;
        let (process, url) = OrdersProcess::start(settings)?;
        self.orders_process = process;
        self.orders = url;
        self.wait_ready(&self.orders.clone()).await
    }

    async fn wait_ready(&self, url: &str) -> Result<()> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let answer = self.http.get(format!("{url}/ready")).send().await;
            if answer.is_ok_and(|response| response.status().is_success()) {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "{url} not ready in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn upstream(&self, context: Context, url: &str) -> Upstream {
        let settings = UpstreamSettings {
            // Longer than any step of a checkout, so the test sees the saga's own answer.
            timeout_ms: 15_000,
            ..UpstreamSettings::default()
        };
        Upstream::new(context, vec![url.to_owned()], settings).signed_by(self.gateway.clone())
    }

    pub fn orders(&self) -> OrdersClient {
        OrdersClient(self.upstream(Context::Orders, &self.orders))
    }

    pub fn cart(&self) -> CartClient {
        CartClient(self.upstream(Context::Cart, &self.cart))
    }

    /// Empties `user_id`'s cart as orders does after a checkout (the gateway may not).
    pub async fn clear_cart(&self, user_id: i64) -> Result<()> {
        let settings = UpstreamSettings {
            timeout_ms: 15_000,
            ..UpstreamSettings::default()
        };
        let cart = CartClient(
            Upstream::new(Context::Cart, vec![self.cart.clone()], settings)
                .signed_by(self.orders_identity.clone()),
        );
        cart.clear(user_id)
            .await
            .map_err(|error| anyhow::anyhow!("clear the cart: {error}"))
    }

    pub async fn checkout(&self, user_id: i64, key: &str) -> DomainResult<CheckoutOutcome> {
        self.orders()
            .checkout(user_id, key, &CheckoutRequest::default())
            .await
    }

    pub async fn fill_cart(&self, user_id: i64, lines: &[(i64, i64)]) -> Result<()> {
        for &(product_id, quantity) in lines {
            self.cart()
                .set_quantity(user_id, product_id, quantity)
                .await
                .map_err(|error| anyhow::anyhow!("fill the cart: {error}"))?;
        }
        Ok(())
    }

    pub async fn audit(&self, url: &str) -> Result<Audit> {
        let response = self
            .http
            .get(format!("{url}/admin/audit"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json().await?)
    }

    /// Switches a fault on in the process at `url` (its own context).
    pub async fn fault(
        &self,
        url: &str,
        context: Context,
        kind: &str,
        params: serde_json::Value,
    ) -> Result<()> {
        self.http
            .post(format!("{url}/admin/faults"))
            .bearer_auth(ADMIN_TOKEN)
            .json(
                &serde_json::json!({ "context": context.as_str(), "kind": kind, "params": params }),
            )
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// The `/metrics` text of the process at `url`.
    pub async fn metrics(&self, url: &str) -> Result<String> {
        let response = self
            .http
            .get(format!("{url}/metrics"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await?
            .error_for_status()?;
        Ok(response.text().await?)
    }

    pub async fn heal(&self, url: &str) -> Result<()> {
        self.http
            .delete(format!("{url}/admin/faults"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Audits of orders, inventory and payments, taken until `settled` holds or the deadline.
    pub async fn wait_until(
        &self,
        what: &str,
        settled: impl Fn(&Audits) -> bool,
    ) -> Result<Audits> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let audits = Audits {
                orders: self.audit(&self.orders).await?,
                inventory: self.audit(&self.inventory).await?,
                payments: self.audit(&self.payments).await?,
            };
            if settled(&audits) {
                return Ok(audits);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{what}: not reached in time; last audits {audits:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(mut self) {
        self.kill_orders();
        for stop in self.stops.drain(..) {
            stop.send(()).ok();
        }
        self.databases.drop_all().await;
    }
}

#[derive(Debug)]
pub struct Audits {
    pub orders: Audit,
    pub inventory: Audit,
    pub payments: Audit,
}

impl Audits {
    pub fn held_reservations(&self) -> usize {
        self.inventory
            .reservations
            .iter()
            .filter(|reservation| reservation.state == domain::inventory::ReservationState::Held)
            .count()
    }

    /// Charges minus refunds: what the shop kept.
    pub fn money_kept_cents(&self) -> i64 {
        let charged: i64 = self
            .payments
            .charges
            .iter()
            .map(|charge| charge.amount_cents)
            .sum();
        let refunded: i64 = self
            .payments
            .refunds
            .iter()
            .map(|refund| refund.amount_cents)
            .sum();
        charged - refunded
    }

    pub fn confirmed_cents(&self) -> i64 {
        self.orders
            .orders
            .iter()
            .filter(|order| order.status == domain::orders::OrderStatus::Confirmed)
            .map(|order| order.total_cents)
            .sum()
    }

    pub fn pending_orders(&self) -> usize {
        self.orders
            .orders
            .iter()
            .filter(|order| order.status == domain::orders::OrderStatus::Pending)
            .count()
    }

    /// Confirmed orders whose stock commit the saga still owes.
    pub fn owed_stock_commits(&self) -> usize {
        self.orders
            .orders
            .iter()
            .filter(|order| order.stock_commit_pending)
            .count()
    }

    /// Nothing held, nothing pending or owed, and the money matches the confirmed orders.
    pub fn consistent(&self) -> bool {
        self.held_reservations() == 0
            && self.pending_orders() == 0
            && self.owed_stock_commits() == 0
            && self.money_kept_cents() == self.confirmed_cents()
    }
}
