//! The `inventory` service: stock, reservations with a TTL. A sweeper releases held
//! reservations whose TTL passed, so a caller that died mid-checkout cannot hold stock forever.

use std::sync::Arc;
use std::time::Duration;

use domain::Context;
use micro_kit::Service;
use store::inventory::SqlInventory;

/// How often expired reservations are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(500);

/// Serves inventory on `listener` until `shutdown` resolves.
pub async fn serve(
    settings: api::Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let service = Service::open(Context::Inventory, settings).await?;
    let inventory = Arc::new(SqlInventory::new(
        service.db.clone(),
        service.faults.clone(),
    ));
    let sweeper = tokio::spawn(sweep_expired(inventory.clone()));
    let router = service.router(micro_rpc::inventory::routes(inventory), Vec::new());
    let served = service.serve(router, listener, shutdown).await;
    sweeper.abort();
    served
}

async fn sweep_expired(inventory: Arc<SqlInventory>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        inventory.sweep_expired().await;
    }
}
