//! The `orders` service: checkout as an orchestrated saga, and reading one's orders.
//!
//! This is the microservices side of the one difference the lab measures. The monolith
//! checks out in one ACID transaction (`monolith/src/checkout.rs`); here no transaction spans
//! `cart`, `catalog`, `inventory` and `payments`, so `orders` drives the checkout step by
//! step, records each step in its own database before the next remote call, compensates
//! what it held when a step fails, and finishes after a crash what a dead process started.
//! [`saga`] holds the steps and the compensation, [`recovery`] the loop that finishes
//! abandoned sagas.

use std::sync::Arc;
use std::time::Duration;

use domain::Context;
use micro_kit::Service;
use micro_rpc::cart::CartClient;
use micro_rpc::catalog::CatalogClient;
use micro_rpc::inventory::InventoryClient;
use micro_rpc::payments::PaymentsClient;

pub mod recovery;
pub mod saga;

pub use saga::SagaOrders;

/// Serves orders on `listener` until `shutdown` resolves. Needs `upstreams` for `cart`,
/// `catalog`, `inventory` and `payments`; `/ready` answers only while all four do.
pub async fn serve(
    settings: api::Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let service = Service::open(Context::Orders, settings).await?;
    let inventory = service.upstream(Context::Inventory)?;
    let payments = service.upstream(Context::Payments)?;
    let cart = service.upstream(Context::Cart)?;
    let catalog = service.upstream(Context::Catalog)?;
    let required = vec![
        inventory.clone(),
        payments.clone(),
        cart.clone(),
        catalog.clone(),
    ];
    let orders = Arc::new(SagaOrders::new(
        service.db.clone(),
        service.faults.clone(),
        saga::Upstreams {
            cart: Arc::new(CartClient(cart)),
            catalog: Arc::new(CatalogClient(catalog)),
            inventory: Arc::new(InventoryClient(inventory)),
            payments: Arc::new(PaymentsClient(payments)),
        },
        service.settings.reservation_ttl_ms,
        recovery::recover_after(&service.settings),
    ));
    let recover_after = recovery::recover_after(&service.settings);
    // Aborted when this future ends or is dropped, so a stopped service recovers nothing.
    let _recovery = AbortOnDrop(tokio::spawn(recovery::run(orders.clone(), recover_after)));
    let router = service.router(micro_rpc::orders::routes(orders), required);
    service.serve(router, listener, shutdown).await
}

/// Aborts a background task when the owner goes away, however it goes away.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often the recovery loop looks for abandoned sagas.
pub const RECOVER_EVERY: Duration = Duration::from_millis(500);
