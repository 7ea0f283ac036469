//! The `inventory` service: stock, reservations with a TTL. A sweeper releases held
//! reservations whose TTL passed, so a caller that died mid-checkout cannot hold stock forever.

use std::sync::Arc;
use std::time::Duration;

use domain::Context;
use micro_kit::{Routes, Service};
use store::inventory::SqlInventory;

/// How often expired reservations are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(500);

/// The inventory's part of any process that hosts it, with its sweeper.
pub fn mount(service: &mut Service) -> anyhow::Result<Routes> {
    let inventory = Arc::new(SqlInventory::new(
        service.db.clone(),
        service.faults.clone(),
    ));
    service.spawn(sweep_expired(inventory.clone()));
    Ok(micro_rpc::inventory::routes(inventory))
}

/// Serves inventory alone on `listener` until `shutdown` resolves.
pub async fn serve(
    settings: api::Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    micro_kit::serve_alone(Context::Inventory, mount, settings, listener, shutdown).await
}

async fn sweep_expired(inventory: Arc<SqlInventory>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        inventory.sweep_expired().await;
    }
}
