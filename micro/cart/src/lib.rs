//! The `cart` service: one cart per user.

use std::sync::Arc;

use domain::Context;
use micro_kit::Service;
use store::cart::SqlCart;

/// Serves carts on `listener` until `shutdown` resolves.
pub async fn serve(
    settings: api::Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let service = Service::open(Context::Cart, settings).await?;
    let cart = Arc::new(SqlCart::new(service.db.clone(), service.faults.clone()));
    let router = service.router(micro_rpc::cart::routes(cart), Vec::new());
    service.serve(router, listener, shutdown).await
}
